"""Resume bookkeeping: per-(stage, source) markers, fingerprints, atomic writes and the run lock.

A unit is done when ``state/<stage>/<sid>.json`` exists, its fingerprint matches what the
current config would produce, and the outputs it lists still exist. The marker is written last,
after the outputs have been renamed into place, so a crash at any moment leaves either a complete
unit or one that is simply redone.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

STAGES = ("download", "sample", "detect", "crop", "identity")  # identity: only when configured


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


def read_jsonl(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def replace_dir(tmp: Path, final: Path) -> None:
    """Move a fully written temporary folder into place, dropping an older version first."""
    if final.exists():
        trash = final.with_name(f".{final.name}.old.{os.getpid()}")
        os.replace(final, trash)
        os.replace(tmp, final)
        shutil.rmtree(trash, ignore_errors=True)
    else:
        os.replace(tmp, final)


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
        try:
            raw = json.loads(self.marker_path(stage, sid).read_text())
            return Marker(raw["fingerprint"], raw["outputs"], raw["result"], raw.get("seconds", 0.0))
        except (OSError, ValueError, KeyError):
            return None

    def is_done(self, stage: str, sid: str, fp: str) -> Marker | None:
        """The marker when the unit is complete for fingerprint ``fp``, else None."""
        marker = self.read(stage, sid)
        if marker is None or marker.fingerprint != fp:
            return None
        if not all((self.root / o).exists() for o in marker.outputs):
            return None
        return marker

    def finish(self, stage: str, sid: str, marker: Marker) -> None:
        self.error_path(stage, sid).unlink(missing_ok=True)
        write_json(self.marker_path(stage, sid), marker.__dict__)

    def fail(self, stage: str, sid: str, error: dict[str, Any]) -> None:
        write_json(self.error_path(stage, sid), error)

    def error(self, stage: str, sid: str) -> dict[str, Any] | None:
        try:
            return json.loads(self.error_path(stage, sid).read_text())
        except (OSError, ValueError):
            return None

    def discard_partial(self, sid: str) -> None:
        """Remove a unit's scratch folders (``<stage dir>/.<sid>.tmp``) after it failed or was
        interrupted, so nothing half-written stays next to finished outputs."""
        for tmp in self.root.glob(f"*/.{sid}.tmp"):
            shutil.rmtree(tmp, ignore_errors=True)

    def sweep_partial(self) -> None:
        """At the start of a run (under the lock): drop every scratch file or folder a killed run
        left. They are never taken for finished outputs, but they take space. yt-dlp's ``.part``
        files are kept: they let an interrupted download resume."""
        for tmp in self.root.glob("**/.*.tmp"):
            if tmp.is_dir():
                shutil.rmtree(tmp, ignore_errors=True)
            else:
                tmp.unlink(missing_ok=True)

    def invalidate(self, stage: str, sid: str) -> None:
        self.marker_path(stage, sid).unlink(missing_ok=True)


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
        try:
            return json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {}

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
