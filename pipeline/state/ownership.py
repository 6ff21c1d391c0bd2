"""Whose output folder it is: the run marker, and the folders a run refuses to write into.

A run writes and deletes only what it created, so it must know which folder is its own. The
output folder holds ``.pipeline-run.json`` with the identity of the config that made it (its
``name`` and a fingerprint of the config file's path relative to the output folder). Refused before
anything is written (``OutputRefused``, exit 2 in the CLI): ``/``, the home folder, a path that is a file,
an existing non-empty folder without the marker (it holds someone's files), and a folder whose
marker names another config unless the user takes it over. A folder made by an earlier version
of this tool (``state/`` with stage folders, no marker) is adopted: the marker is added.
"""
from __future__ import annotations

import os
import stat
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from ..core.layout import AVAILABILITY, FINAL_STEP, LISTINGS, LOCK, RUN_MARKER, WARNINGS, OutputLayout
from ..io.files import read_json_object, write_json
from ..stages import NAMES
from .markers import fingerprint

# A folder holding only these counts as empty: a run killed as it started, and what file
# managers drop into a folder they show (never deleted by a run either way).
_AS_EMPTY = frozenset({LOCK, ".DS_Store", "Thumbs.db", "desktop.ini"})


class OutputRefused(Exception):
    """The output folder is not this run's to write into; the message says why and what to do."""


@dataclass(frozen=True)
class Identity:
    """Which config a folder belongs to. ``config`` is None for a config given as data (the
    library API without a file): then the name alone must match."""

    name: str
    config: str | None = None  # fingerprint of the config file's resolved path
    config_file: str | None = None  # for messages only

    def matches(self, other: Identity) -> bool:
        return self.name == other.name and (None in (self.config, other.config)
                                            or self.config == other.config)

    def describe(self) -> str:
        return f"'{self.name}'" + (f" ({self.config_file})" if self.config_file else "")


def identity_of(name: str, config_file: Path | str | None, root: Path) -> Identity:
    """The config's name and a fingerprint of where its file is, seen from the output folder:
    a project folder moved or checked out elsewhere (config and output together) stays the
    same config, while another config file is another config even with the same name.

    A config read from a pipe (``cat c.yaml | ... run /dev/stdin``, ``<(...)``) has no file to
    be: its path names a different pipe each time, so it is known by its name alone, as a
    config given as data is; otherwise its second run would be refused as another config."""
    if config_file is None or not _regular_file(config_file):
        return Identity(name)
    resolved = Path(config_file).expanduser().resolve()
    return Identity(name, fingerprint(os.path.relpath(resolved, Path(root).resolve())),
                    str(resolved))


def _regular_file(path: Path | str) -> bool:
    try:
        return stat.S_ISREG(os.stat(Path(path).expanduser()).st_mode)
    except OSError:  # gone since it was read: the path is all there is to go by
        return True


def read_marker(root: Path) -> Identity | None:
    """The identity recorded in ``root``; None when there is no readable marker."""
    raw = read_json_object(OutputLayout(root).run_marker)
    if raw is None or not isinstance(raw.get("name"), str):
        return None
    config, config_file = raw.get("config"), raw.get("config_file")
    return Identity(raw["name"], config if isinstance(config, str) else None,
                    config_file if isinstance(config_file, str) else None)


def _made_by_earlier_version(root: Path) -> bool:
    state = OutputLayout(root).state_dir
    if not state.is_dir():
        return False
    names = {p.name for p in state.iterdir() if not p.name.startswith(".")}
    return bool(names) and names <= {*NAMES, LISTINGS, WARNINGS, FINAL_STEP, *AVAILABILITY}


@dataclass(frozen=True)
class Claim:
    """What ``check_output`` decided; ``write`` records it (after the folder is made)."""

    root: Path
    identity: Identity
    action: str  # "ours" (marker matches), "new", "adopt" (earlier version), "take-over"

    def write(self, log: Callable[[str], None] = print) -> None:
        if self.action == "ours":
            return
        if self.action == "adopt":
            log(f"{self.root}: made by an earlier version of this tool; adopted as config "
                f"{self.identity.describe()}")
        elif self.action == "take-over":
            log(f"{self.root}: taken over by config {self.identity.describe()}")
        write_json(OutputLayout(self.root).run_marker, {**asdict(self.identity),
                                        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z")})


def check_output(root: Path, identity: Identity, take_over: bool = False) -> Claim:
    """Decide whether a run of ``identity`` may use ``root``; raises ``OutputRefused``. Writes
    nothing, so ``validate`` can call it too."""
    root = Path(root)
    resolved = root.expanduser().resolve()
    if resolved == Path(resolved.anchor):
        raise OutputRefused(f"output {root} is the root of the file system; set output to a "
                            "folder of its own, such as data/<name>")
    if resolved == Path.home().resolve():
        raise OutputRefused(f"output {root} is your home folder; set output to a folder of its "
                            "own, such as ~/datasets/<name>")
    if root.exists() and not root.is_dir():
        raise OutputRefused(f"output {root} is a file, not a folder; set output to a folder path")
    if not root.exists() or {p.name for p in root.iterdir()} <= _AS_EMPTY:
        return Claim(root, identity, "new")
    owner = read_marker(root)
    if owner is None:
        if _made_by_earlier_version(root):
            return Claim(root, identity, "adopt")
        raise OutputRefused(f"output {root} already holds files that this tool did not write (no "
                            f"{RUN_MARKER}); set output to a new or empty folder so none of them is "
                            "touched")
    if owner.matches(identity):
        return Claim(root, identity, "ours")
    if take_over:
        return Claim(root, identity, "take-over")
    raise OutputRefused(f"output {root} belongs to config {owner.describe()}, not to "
                        f"{identity.describe()}; set another output, or run with --take-over to "
                        "make it this config's (its dataset is then rebuilt from this config)")
