"""The config's field types and the rules of a label: numbers in range, times, labels that are
safe folder names on every system, paths with ``~``, and the base of every section."""
from __future__ import annotations

import os
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict


def between(lo: float, hi: float):
    def check(v: float) -> float:
        if not lo <= v <= hi:
            raise ValueError(f"must be between {lo:g} and {hi:g}")
        return v
    return AfterValidator(check)


def at_least(lo: float):
    def check(v: float) -> float:
        if v < lo:
            raise ValueError(f"must be at least {lo:g}")
        return v
    return AfterValidator(check)


def _positive(v: float) -> float:
    if v <= 0:
        raise ValueError("must be greater than 0")
    return v


Fraction = Annotated[float, between(0, 1)]


PositiveFloat = Annotated[float, AfterValidator(_positive)]


PositiveInt = Annotated[int, at_least(1)]


_TIME_RE = re.compile(r"^(?:(\d+):)?(?:(\d+):)?(\d+(?:\.\d+)?)$")


def parse_time(value: Any) -> float:
    """Seconds from ``65``, ``65.5``, ``"1:05"`` or ``"1:02:03.5"`` (the forms users copy from players)."""
    if isinstance(value, bool):
        raise ValueError("must be a time such as 65, 65.5, \"1:05\" or \"1:02:03\"")
    if isinstance(value, (int, float)):
        if value < 0:
            raise ValueError("must not be negative")
        return float(value)
    if isinstance(value, str):
        m = _TIME_RE.match(value.strip())
        if m:
            parts = [p for p in m.groups() if p is not None]
            seconds = 0.0
            for p in parts:
                seconds = seconds * 60 + float(p)
            if len(parts) > 1 and any(float(p) >= 60 for p in parts[1:]):
                raise ValueError(f"'{value}' has minutes or seconds of 60 or more")
            return seconds
    raise ValueError("must be a time such as 65, 65.5, \"1:05\" or \"1:02:03\"")


Time = Annotated[float, BeforeValidator(parse_time)]


_WINDOWS_RESERVED = {"CON", "PRN", "AUX", "NUL", *(f"COM{i}" for i in range(1, 10)),
                     *(f"LPT{i}" for i in range(1, 10))}


_LABEL_PUNCTUATION = " _.+-"


LABEL_MAX_BYTES = 240
"""A label is a folder name (``dataset/<split>/<label>/``) and the start of sheet file names
(``<label>~<page>.jpg``); most file systems hold 255 bytes of UTF-8 in a name (NTFS: 255 UTF-16
units, never fewer), so 15 bytes stay for what a file name adds."""


def label_problem(v: str) -> str | None:
    """Why ``v`` cannot be a folder name on Linux, macOS and Windows, or None. Letters, marks
    and digits of any script are fine (``pilote_été``, ``飞行员``)."""
    if not 1 <= len(v) <= 64:
        return f"must be 1-64 characters (got {len(v)})"
    for ch in v:
        if ch in "/\\":
            return f"must not contain a path separator ({ch!r})"
        if ch in '<>:"|?*':
            return f"must not contain {ch!r} (not allowed in Windows file names)"
        category = unicodedata.category(ch)
        if category[0] == "C":
            return f"must not contain control or invisible characters (U+{ord(ch):04X})"
        if category[0] not in "LMN" and ch not in _LABEL_PUNCTUATION:
            return (f"may hold letters and digits of any script, space, '_', '-', '.', '+' "
                    f"(got {ch!r}, U+{ord(ch):04X})")
    size = len(v.encode("utf-8"))
    if size > LABEL_MAX_BYTES:
        return (f"must be at most {LABEL_MAX_BYTES} bytes of UTF-8 (got {size}): a folder name "
                "holds 255 bytes on most disks, and sheet file names add to it")
    if ".." in v:
        return "must not contain '..'"
    if unicodedata.category(v[0])[0] not in "LN":
        return "must start with a letter or a digit"
    if v.rstrip(". ") != v:
        return "must not end with '.' or a space (Windows drops them)"
    if v.split(".")[0].upper() in _WINDOWS_RESERVED:
        return f"'{v}' is a reserved file name on Windows"
    return None


def _check_label(v: str) -> str:
    """Labels become folder names on every OS: NFC-normalised (so ``é`` typed either way is one
    label and one folder), then checked by ``label_problem``."""
    v = unicodedata.normalize("NFC", v)
    problem = label_problem(v)
    if problem is not None:
        raise ValueError(problem)
    return v


Label = Annotated[str, AfterValidator(_check_label)]


def stem_label(stem: str) -> str | None:
    """``stem`` (a file name without its extension) as a label, or None when it cannot be one:
    the default run name, so two configs without ``name:`` get two output folders."""
    stem = unicodedata.normalize("NFC", stem)
    return stem if label_problem(stem) is None else None


def label_key(v: str) -> str:
    """What a label is to a file system that ignores case (macOS, Windows) and Unicode form
    (``é`` as one code point or two): two labels with one key are one folder there."""
    return unicodedata.normalize("NFC", unicodedata.normalize("NFC", v).casefold())


@dataclass(frozen=True)
class Named:
    """A label and where it was given: ``prefix`` starts a message about it (``sources.1.label:``),
    ``ref`` names it in a message about another (``sources.1.label``)."""

    prefix: str
    ref: str
    label: str


def label_clash(named: Iterable[Named]) -> str | None:
    """Of labels in order, the first that is an earlier one but for case or Unicode form, as
    ``PREFIX 'a' and 'A' (REF) differ ...``; None when all are apart. The same label twice is one
    folder on purpose, not a clash."""
    first: dict[str, Named] = {}
    for n in named:
        other = first.setdefault(label_key(n.label), n)
        if other.label != n.label:
            return (f"{n.prefix} '{n.label}' and '{other.label}' ({other.ref}) differ only by case "
                    "or Unicode form: one folder on macOS and Windows; write them the same")
    return None


# A path read from the config: ``~`` means the home folder, as in a shell.
UserPath = Annotated[str, AfterValidator(os.path.expanduser)]


def no_such_path(path: str | Path) -> str:
    """What to say about a local source that is not there. A relative path is read from the
    working folder (a config run from another folder, as a demo often is, misses its videos):
    the message names that folder."""
    where = "" if Path(path).expanduser().is_absolute() else f" (relative to the working folder {Path.cwd()})"
    return f"no such file or folder: {path}{where}"


class Model(BaseModel):
    # allow_inf_nan: a .nan or .inf passes every comparison check and fails much later
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, allow_inf_nan=False)
