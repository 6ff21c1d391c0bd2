"""File helpers every stage and step writes with: atomic writes, JSON and JSONL, images, digests
of outputs, and the swap of a finished folder into place.

Readers never see half a file: everything is written to a temporary sibling and renamed.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from contextlib import contextmanager
from pathlib import Path
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import cv2


def write_atomic(path: Path, data: bytes | str) -> None:
    """Write to a temporary sibling, fsync, then rename: readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as f:
        f.write(data.encode() if isinstance(data, str) else data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def encode_image(suffix: str, image: Any, params: list[int]) -> bytes:
    """The file bytes of ``image`` in the format of ``suffix`` (``.jpg``, ``.png``, ``.webp``)."""
    ok, data = cv2.imencode(suffix, image, params)
    if not ok:
        raise ValueError(f"OpenCV cannot encode {suffix} images")
    return data.tobytes()


def write_bytes(path: Path, data: bytes) -> None:
    """Write with Python: a full or read-only disk then raises an OSError that says so
    (``cv2.imwrite`` only returns False)."""
    with open(path, "wb") as f:
        f.write(data)


def write_image(path: Path, image: Any, params: list[int]) -> None:
    """Encode with OpenCV, write with Python (see ``write_bytes``)."""
    write_bytes(path, encode_image(path.suffix, image, params))


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
    rerun's check cheap (docs/guarantees.md: ~0.1 ms a crop), and any truncation changes the
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


def through_link(final: Path) -> Path:
    """Where a folder really is: a ``dataset/`` the user made a link to another disk is written
    at the link's target, so the link and the target's other files stay as they are (renaming
    the link itself would put a local folder in its place)."""
    return Path(os.path.realpath(final)) if final.is_symlink() else final


def replace_dir(tmp: Path, final: Path, ours: Callable[[str, Path], bool] | None = None) -> None:
    """Move a fully written temporary folder into place, dropping an older version first.

    ``ours`` (a test of a file: its path relative to ``final``, and where it is now) is given
    for folders a user can see and may add files to (``dataset/``, ``sheets/``): only the old
    files it accepts are deleted, any other file is put back into the new folder (``keep_foreign``).
    A ``final`` that is a link is replaced at its target (``through_link``; ``tmp`` comes from
    ``fresh_tmp_dir``, which puts it there).
    """
    final = through_link(final)
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


def fresh_tmp_dir(final: Path, unique: bool = False) -> Path:
    """An empty scratch folder beside ``final`` (beside its target when it is a link).

    ``.<name>.tmp``, whose leftover from a crashed attempt is removed, for writers that hold the
    run lock; ``unique``: ``.<name>.<pid>.tmp``, for writers that may run side by side, after the
    scratch of dead processes is removed (``sweep_dead_scratch``).
    """
    linked = final.is_symlink()
    final = through_link(final)
    if unique:
        sweep_dead_scratch(final)
    tmp = final.with_name(f".{final.name}.{os.getpid()}.tmp" if unique else f".{final.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=not linked)  # never make the folders of a link's missing target (a disk not mounted)
    return tmp


@contextmanager
def building(final: Path, unique: bool = False) -> Iterator[Path]:
    """``fresh_tmp_dir`` that is removed again when the block fails (a full disk, Ctrl-C): a
    failed rebuild leaves nothing half-written behind."""
    tmp = fresh_tmp_dir(final, unique)
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def pid_alive(pid: int) -> bool:
    """Whether a process of this id runs on this host (one of another user counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _scratch_pattern(name: str) -> re.Pattern[str]:
    """The scratch names ``fresh_tmp_dir`` and ``replace_dir`` give around a folder ``name``:
    ``.<name>.tmp``, ``.<name>.<pid>.tmp`` (and ``...tmp.cache.*``, a cache kept beside it) and
    ``.<name>.old.<pid>``."""
    return re.compile(rf"^\.{re.escape(name)}\.(?:tmp|(\d+)\.tmp(?:\.cache\..+)?|old\.(\d+))$")


def sweep_dead_scratch(final: Path) -> list[Path]:
    """Remove the scratch around ``final`` that processes no longer running left (killed during
    a write or its clean-up); a living process's scratch is kept. Returns what was removed."""
    pattern, removed = _scratch_pattern(final.name), []
    try:
        siblings = list(final.parent.iterdir())
    except OSError:
        return removed
    for path in siblings:
        m = pattern.match(path.name)
        if m is None or any(pid and pid_alive(int(pid)) for pid in m.groups()):
            continue
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
        removed.append(path)
    return removed
