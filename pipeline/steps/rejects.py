"""The review's rejects file: which crops a person left out of ``dataset/``.

A rejects file (``<output>/rejects.txt``, as saved by ``sheets/index.html``) lists crop ids; they
get ``status`` ``rejected`` in the manifest and no place in ``dataset/``. Rejecting is a global
step only, never part of a stage fingerprint, so applying or changing a review recomputes
nothing, and the crop files stay under ``crops/`` to be restored.
"""
from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ..algo.quality import KEPT
from ..io.text import TextError, decode_text

REJECTED = "rejected"  # statuses: KEPT, REJECTED (review), DROPPED (filters, selection, dedupe)
_IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp")


REJECTS_FILE = "rejects.txt"


class RejectsError(TextError):
    """A rejects file that cannot be read as text; the message says what to do."""


def read_rejects(path: Path) -> list[str]:
    """Crop ids from a rejects file, in file order without repeats.

    Tolerant because people edit it by hand: blank lines, ``#`` comments (whole or trailing),
    a BOM, CRLF and surrounding spaces are ignored, any common encoding is read
    (``decode_text``), and a line naming a crop file (``crops/<sid>/<crop_id>.jpg`` or
    ``.../<crop_id>.jpg``) counts as its crop id.
    """
    ids: dict[str, None] = {}
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise RejectsError(f"cannot read rejects file {path}: {exc.strerror or exc}") from None
    for line in decode_text(data, f"rejects file {path}").splitlines():
        item = line.split("#", 1)[0].strip()
        if not item:
            continue
        name = item.replace("\\", "/").rsplit("/", 1)[-1]
        if name.lower().endswith(_IMAGE_SUFFIXES):
            name = name.rsplit(".", 1)[0]
        ids[name] = None
    return list(ids)


def rejects_file_for(root: Path, given: Path | str | None = None) -> Path | None:
    """The rejects file a run applies: the one given, else ``<output>/rejects.txt`` when present.

    A file that was given must exist (a typo must not silently put every crop back).
    """
    if given is not None:
        path = Path(given).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"rejects file not found: {path}")
        return path
    default = root / REJECTS_FILE
    return default if default.is_file() else None


def apply_rejects(rows: list[dict[str, Any]], rejects: Iterable[str]) -> list[str]:
    """Mark the listed rows ``rejected`` (no dataset file); returns the ids that match no row.
    A dropped crop stays dropped (it is not in ``dataset/`` either way)."""
    rejects = list(rejects)
    wanted = set(rejects)
    for row in rows:
        if row["crop_id"] in wanted and row["status"] == KEPT:
            row["status"], row["dataset_file"] = REJECTED, None
    known = {row["crop_id"] for row in rows}
    return [i for i in rejects if i not in known]
