"""What the review server saves: ``rejects.txt`` and ``identities.txt``, written whole and
atomically, refused when the file changed since the page was loaded, names a run would refuse
refused too, and names the page did not show kept."""
from __future__ import annotations

import hashlib
import os
import tempfile
import threading
from pathlib import Path

from ..io.text import decode_text
from ..state.lock import LockError, RunLock
from ..steps.names import NAMES_FILE
from ..steps.rejects import REJECTS_FILE


TMP_SUFFIX = ".tmp"  # our temporary files: .<name>.<random or pid>.tmp beside the file


ABSENT = "absent"  # the version of a file that does not exist


class Refused(Exception):
    """A request answered with ``status`` and a one-line ``reason``; nothing was written."""

    def __init__(self, status: int, reason: str):
        super().__init__(reason)
        self.status = status
        self.reason = reason


def keep_other_names(text: str, path: Path) -> str:
    """The page's names, then the lines of the names file already there that name what the page
    did not: a track (``<source id>:<track id>``, written by hand; the page names whole clusters)
    or a cluster named in an earlier visit and not yet applied by a run (the page shows the names
    of the manifest). Without this, naming one cluster would erase those names."""
    try:
        old = decode_text(path.read_bytes(), str(path))
    except (OSError, ValueError):
        return text  # no file yet, or one a run refuses anyway: the page's names alone

    def key(line: str) -> str | None:
        item = line.split("#", 1)[0].split()
        return item[0] if item else None

    given = {key(line) for line in text.splitlines()} - {None}
    others = [line for line in old.splitlines() if key(line) is not None and key(line) not in given]
    if not others:
        return text
    return (text.rstrip("\n") + "\n# kept from the file before this save:\n"
            + "\n".join(others) + "\n")


def file_version(path: Path) -> str:
    """What the page is given at load and sends back with a save: the file's SHA-256, or
    ``ABSENT`` (a hash, not mtime and size: two saves within one clock tick differ too)."""
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except FileNotFoundError:
        return ABSENT


def is_ours(name: str) -> bool:
    """A temporary file of a save: ``.rejects.txt.<random>.tmp`` (``.<pid>.tmp`` before)."""
    return any(name.startswith(f".{saved}.") and name.endswith(TMP_SUFFIX) for saved in SAVES.values())


def remove_leftovers(root: Path) -> list[str]:
    """Temporary files of saves cut short (a killed server, a full disk); their names say so."""
    gone = []
    for path in root.glob(".*" + TMP_SUFFIX):
        if is_ours(path.name) and path.is_file():
            path.unlink(missing_ok=True)
            gone.append(path.name)
    return gone


def write_unique(path: Path, text: str) -> None:
    """Write to a temporary name no other writer uses (``mkstemp``), fsync, rename over ``path``."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=TMP_SUFFIX)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(text.encode())
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


class Saver:
    """Writes the saved files of one output folder, one save at a time: a lock in this process,
    and the folder's run lock, so no save lands under a running run (it is refused: the run
    reads the file at its start, and the page keeps the selection to save again)."""

    def __init__(self, root: Path):
        self.root = root
        self._lock = threading.Lock()

    def versions(self) -> dict[str, str]:
        with self._lock:
            return {name: file_version(self.root / name) for name in SAVES.values()}

    def save(self, name: str, text: str, base: str | None) -> str:
        """Write ``text`` to ``<root>/<name>`` if the file is still at version ``base``; its new
        version."""
        path = self.root / name
        with self._lock:
            if base is None:
                raise Refused(428, f"a save of {name} must say which version of it the page loaded")
            if file_version(path) != base:
                raise Refused(409, f"{name} was changed since this page was loaded (another tab, or "
                                   "by hand); nothing was saved: reload the page (your selection is "
                                   "kept) and save again")
            run_lock = RunLock(self.root, "review save")
            try:
                run_lock.acquire()
            except LockError as exc:
                raise Refused(423, f"nothing was saved: {exc}") from None
            try:
                write_unique(path, keep_other_names(text, path) if name == NAMES_FILE else text)
            except OSError as exc:
                raise Refused(500, f"{name} could not be written: {exc.strerror or exc}") from None
            finally:
                run_lock.release()
            return file_version(path)


SAVES = {"/api/rejects": REJECTS_FILE, "/api/identities": NAMES_FILE}  # endpoint: file written
