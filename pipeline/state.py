"""Resume bookkeeping: per-(stage, source) markers, fingerprints, atomic writes and the run lock.

A unit is done when ``state/<stage>/<sid>.json`` exists, its fingerprint matches what the
current config would produce, and the outputs it lists still exist with the size and digest the
marker recorded (``file_digest``): a deleted, truncated or damaged output redoes its unit. State
files that cannot be read (garbled, not JSON, JSON of the wrong shape) count as absent. The
marker is written last,
after the outputs have been renamed into place, so a crash at any moment leaves either a complete
unit or one that is simply redone.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable

def fingerprint(*parts: Any) -> str:
    """A short stable hash of JSON-serialisable parts (config sections, code versions, upstream)."""
    blob = json.dumps(parts, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def write_atomic(path: Path, data: bytes | str) -> None:
    """Write to a temporary sibling, fsync, then rename: readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as f:
        f.write(data.encode() if isinstance(data, str) else data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def write_image(path: Path, image: Any, params: list[int]) -> None:
    """Encode with OpenCV, write with Python: a full or read-only disk then raises an OSError
    that says so (``cv2.imwrite`` only returns False)."""
    import cv2

    ok, data = cv2.imencode(path.suffix, image, params)
    if not ok:
        raise ValueError(f"OpenCV cannot encode {path.suffix} images")
    with open(path, "wb") as f:
        f.write(data.tobytes())


def write_json(path: Path, obj: Any) -> None:
    write_atomic(path, json.dumps(obj, indent=1, sort_keys=True, default=str) + "\n")


def write_jsonl(path: Path, rows: Iterable[dict]) -> None:
    write_atomic(path, "".join(json.dumps(r, sort_keys=True) + "\n" for r in rows))


def read_json_object(path: Path) -> dict[str, Any] | None:
    """A JSON object from ``path``; None when it is missing, unreadable, not JSON or not an object
    (state files are ours, so anything else is damage: the unit is simply redone)."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return raw if isinstance(raw, dict) else None


DIGEST_EDGE = 64 * 1024  # bytes hashed at each end of a file; smaller files are hashed whole


def file_digest(path: Path) -> list:
    """[size, blake2b of the first and last 64 KiB]: reading at most 128 KiB a file keeps a
    rerun's check cheap (README, Guarantees: ~0.1 ms a crop), and any truncation changes the
    size while damage near either end, where JPEG headers and JSONL tails live, changes the hash."""
    h = hashlib.blake2b(digest_size=8)
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        h.update(f.read(DIGEST_EDGE))
        if size > 2 * DIGEST_EDGE:
            f.seek(size - DIGEST_EDGE)
        h.update(f.read(DIGEST_EDGE))
    return [size, h.hexdigest()]


def read_jsonl(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def replace_dir(tmp: Path, final: Path, ours: Callable[[str, Path], bool] | None = None) -> None:
    """Move a fully written temporary folder into place, dropping an older version first.

    ``ours`` (a test of a file: its path relative to ``final``, and where it is now) is given for folders a user can see and
    may add files to (``dataset/``, ``sheets/``): only the old files it accepts are deleted,
    any other file is put back into the new folder (``keep_foreign``).
    """
    if final.exists():
        trash = final.with_name(f".{final.name}.old.{os.getpid()}")
        os.replace(final, trash)
        os.replace(tmp, final)
        if ours is None:
            shutil.rmtree(trash, ignore_errors=True)
        else:
            keep_foreign(trash, final, ours)
    else:
        os.replace(tmp, final)


def keep_foreign(old: Path, final: Path, ours: Callable[[str, Path], bool]) -> None:
    """Delete the files of ``old`` that ``ours`` accepts and move every other file back into
    ``final`` (same relative path). A file that cannot go back (the new folder has a file of that
    name) stays in ``old``, which is then kept rather than deleted."""
    files = sorted(p for p in old.rglob("*") if not p.is_dir())
    decided = [(path, path.relative_to(old).as_posix()) for path in files]
    decided = [(path, rel, ours(rel, path)) for path, rel in decided]  # all before any change
    for path, rel, is_ours in decided:
        dest = final / rel
        if is_ours:
            path.unlink(missing_ok=True)
        elif not (dest.exists() or dest.is_symlink()):
            dest.parent.mkdir(parents=True, exist_ok=True)
            os.replace(path, dest)
    for folder in sorted((p for p in old.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
        try:
            folder.rmdir()
        except OSError:
            pass
    try:
        old.rmdir()
    except OSError:
        pass


def fresh_tmp_dir(final: Path) -> Path:
    """An empty scratch folder beside ``final`` (a leftover from a crashed attempt is removed)."""
    tmp = final.with_name(f".{final.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    return tmp


@dataclass(frozen=True)
class Marker:
    """What a finished unit recorded: its fingerprint, outputs (relative paths) and result."""

    fingerprint: str
    outputs: list[str]
    result: dict[str, Any]
    seconds: float = 0.0
    digests: dict[str, list] | None = None  # output -> file_digest; None in markers of old versions


class State:
    """The ``state/`` folder of one output directory."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.dir = self.root / "state"

    def marker_path(self, stage: str, sid: str) -> Path:
        return self.dir / stage / f"{sid}.json"

    def error_path(self, stage: str, sid: str) -> Path:
        return self.dir / stage / f"{sid}.error.json"

    def read(self, stage: str, sid: str) -> Marker | None:
        raw = read_json_object(self.marker_path(stage, sid))
        try:
            marker = Marker(raw["fingerprint"], raw["outputs"], raw["result"],  # type: ignore[index]
                            raw.get("seconds", 0.0), raw.get("digests"))  # type: ignore[union-attr]
        except (TypeError, KeyError):
            return None
        shapes = (isinstance(marker.outputs, list) and all(isinstance(o, str) for o in marker.outputs)
                  and isinstance(marker.result, dict)
                  and isinstance(marker.digests, (dict, type(None))))
        return marker if shapes else None

    def is_done(self, stage: str, sid: str, fp: str) -> Marker | None:
        """The marker when the unit is complete for fingerprint ``fp``, else None: every output
        it lists exists and, when the marker recorded its digest (markers of earlier versions
        did not), still has that size and hash."""
        marker = self.read(stage, sid)
        if marker is None or marker.fingerprint != fp:
            return None
        for output in marker.outputs:
            path, recorded = self.root / output, (marker.digests or {}).get(output)
            try:
                if not path.exists() or (recorded is not None and file_digest(path) != recorded):
                    return None
            except OSError:
                return None
        return marker

    def finish(self, stage: str, sid: str, marker: Marker) -> None:
        self.error_path(stage, sid).unlink(missing_ok=True)
        digests = {o: file_digest(self.root / o) for o in marker.outputs if (self.root / o).is_file()}
        write_json(self.marker_path(stage, sid), {**marker.__dict__, "digests": digests})

    def fail(self, stage: str, sid: str, error: dict[str, Any]) -> None:
        write_json(self.error_path(stage, sid), error)

    def error(self, stage: str, sid: str) -> dict[str, Any] | None:
        return read_json_object(self.error_path(stage, sid))

    def discard_partial(self, sid: str) -> None:
        """Remove a unit's scratch folders (``<stage dir>/.<sid>.tmp``) after it failed or was
        interrupted, so nothing half-written stays next to finished outputs."""
        for tmp in self.root.glob(f"*/.{sid}.tmp"):
            shutil.rmtree(tmp, ignore_errors=True)

    def sweep_partial(self, ours: dict[str, Callable[[str, Path], bool]] | None = None) -> None:
        """At the start of a run (under the lock): drop the scratch files and folders a killed run
        left. They are never taken for finished outputs, but they take space. yt-dlp's ``.part``
        files are kept: they let an interrupted download resume.

        Only names this code gives its scratch are touched, and only where it writes them: the
        top level of its own folders (``SCRATCH_DIRS``), and in the output folder itself the
        scratch of its own files and of ``dataset/`` and ``sheets/``. A user's ``.vim.tmp``, a
        ``.draft.tmp/`` folder or a ``.git/.packed.tmp`` is never removed. The old copy of a
        swapped folder goes through ``keep_foreign`` with the test ``ours`` gives for it, so
        files a user put into ``dataset/`` or ``sheets/`` survive a crash at the swap.
        """
        ours = ours or {}
        folders = [self.root / d for d in SCRATCH_DIRS]
        folders += [p for p in self.dir.glob("*") if p.is_dir() and not p.name.startswith(".")]
        for folder in folders:
            for path in _listing(folder):
                if _SCRATCH.match(path.name):
                    _remove(path)
        for path in _listing(self.root):
            m = _ROOT_SCRATCH.match(path.name)
            if m is None or m.group(1) not in ROOT_NAMES:
                continue
            if m.group(2).startswith(".old.") and m.group(1) in ours and path.is_dir():
                keep_foreign(path, self.root / m.group(1), ours[m.group(1)])
            else:
                _remove(path)

    def invalidate(self, stage: str, sid: str) -> None:
        self.marker_path(stage, sid).unlink(missing_ok=True)


SCRATCH_DIRS = ("videos", "frames", "detections", "crops", "state")
"""Folders only this code writes into, whose top level holds its per-source scratch."""
ROOT_NAMES = frozenset({"dataset", "sheets", "manifest.csv", "manifest.jsonl", "manifest.parquet",
                        "summary.json", ".pipeline-run.json"})
"""What the run writes at the top of the output folder (besides ``run.lock`` and the folders
above); their scratch is ``.<name>.tmp``, ``.<name>.<pid>.tmp`` or ``.<name>.old.<pid>``."""
_SCRATCH = re.compile(r"^\..+(\.tmp|\.\d+\.tmp|\.old\.\d+)$")
_ROOT_SCRATCH = re.compile(r"^\.(.+?)(\.tmp|\.\d+\.tmp|\.old\.\d+)$")


def _listing(folder: Path) -> list[Path]:
    try:
        return list(folder.iterdir())
    except OSError:
        return []


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


# ----------------------------------------------------------------------------- the run lock

class LockError(RuntimeError):
    pass


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class RunLock:
    """``run.lock``: one run at a time per output folder; a dead owner's lock is taken over.

    The lock file is created with O_EXCL so two starting runs cannot both win. A lock whose
    process is gone (same host) is stale: it is replaced, again with O_EXCL after removal, so
    two runs taking over the same stale lock still cannot both succeed.
    """

    def __init__(self, root: Path):
        self.path = Path(root) / "run.lock"
        self.held = False

    def _owner(self) -> dict[str, Any]:
        return read_json_object(self.path) or {}

    def _create(self) -> bool:
        try:
            fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return False
        with os.fdopen(fd, "w") as f:
            json.dump({"pid": os.getpid(), "host": socket.gethostname(),
                       "started": time.strftime("%Y-%m-%d %H:%M:%S")}, f)
        return True

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        for _ in range(3):
            if self._create():
                self.held = True
                return
            owner = self._owner()
            same_host = owner.get("host") == socket.gethostname()
            pid = owner.get("pid")
            if owner and same_host and isinstance(pid, int) and not _pid_alive(pid):
                self.path.unlink(missing_ok=True)  # stale: its process is gone
                continue
            if not owner:  # being written right now, or garbage: give it a moment
                time.sleep(0.2)
                if not self._owner():
                    self.path.unlink(missing_ok=True)
                continue
            raise LockError(
                f"another run is using {self.path.parent} (pid {pid} on {owner.get('host')}, "
                f"started {owner.get('started')}); wait for it to finish, or delete {self.path} "
                "if you are sure it is gone")
        raise LockError(f"could not take {self.path}")

    def release(self) -> None:
        if self.held:
            self.path.unlink(missing_ok=True)
            self.held = False

    def __enter__(self) -> "RunLock":
        self.acquire()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.release()
