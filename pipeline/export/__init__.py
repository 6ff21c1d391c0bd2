"""Exports of a finished run into the formats of the tools people already use.

Every format is a module with one function, ``write(frames, root, out)``: the frames with their
boxes (``frames.read_frames``, the one reader of the manifest and the sampled frames), the run's
output folder, and an empty folder to fill; the sharded formats (``SHARDED``) take the shard
limits too (``shards.ShardLimits``). ``export`` fills a temporary folder and renames it
into place, so an export is never half written and a rerun replaces the previous one whole.
Nothing here runs a stage.

An export holds the run's lock (``run.lock``) while it reads the manifest and writes, so it never
reads a manifest a run is rewriting and two exports never write one folder at once: the second
is refused in one line naming the first. Exports of two different runs into one ``--out`` hold
different run locks, so they also take turns on the folder that holds ``--out`` (``out_locked``):
the second waits, then replaces the first's export whole. Its scratch has this process's id in its name
(``.<format>.<pid>.tmp``), and scratch of exports that were killed is removed by the next one.
"""
from __future__ import annotations

import errno
import fcntl
import importlib
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from ..core.layout import OutputLayout
from ..io.files import building, read_json_object, replace_dir, through_link, write_json
from ..state.lock import RunLock
from .frames import ExportError, manifest_path, read_frames
from .shards import ShardLimits

FORMATS = ("coco", "yolo", "labelstudio", "hf", "fiftyone", "webdataset", "parquet")
SHARDED = ("webdataset", "parquet")  # crops in shards for training jobs (shards.py)
CROP_FORMATS = ("hf", *SHARDED)
"""Formats that hold the crops themselves, one record a crop; the others hold frames and boxes."""
MARK = ".pipeline-export.json"  # in every export folder: what wrote it, so a rerun may replace it


@dataclass(frozen=True)
class ExportReport:
    """What an export wrote."""

    format: str
    folder: Path
    frames: int
    boxes: int


NEEDS = {"hf": ("datasets", 'pip install -e ".[hf]" (or pip install datasets)'),
         "parquet": ("pyarrow", 'pip install -e ".[parquet]" (or pip install pyarrow)')}
"""Formats that need a package the plain install does not have, and how to install it."""


def check_replaceable(folder: Path) -> None:
    """An export replaces its folder whole, so the folder must be new, empty, or an export (it
    holds ``MARK``): ``--out ~/Desktop`` must never wipe a desktop."""
    if folder.is_file():
        raise ExportError(f"{folder} is a file: give a folder to export into")
    if folder.is_dir() and any(folder.iterdir()) and not (folder / MARK).is_file():
        raise ExportError(f"{folder} is not empty and holds no earlier export (which would be "
                          "replaced whole): give a new or empty folder")


def check_out(folder: Path, root: Path) -> None:
    """Refuse an ``--out`` whose replacement would take other folders with it: the run's output
    folder or a folder holding it, and the current folder or one holding it (``--out .``)."""
    real = folder.resolve()
    for what, other in (("the run's output folder", root), ("the current folder", Path.cwd())):
        other = other.resolve()
        if real == other or real in other.parents:
            held = "is" if real == other else "holds"
            raise ExportError(f"{folder} {held} {what} ({other}), which an export (replaced whole) "
                              "must never be: give a new folder, such as "
                              f"{default_folder(root, 'FORMAT')}")
    check_replaceable(folder)


def check_installed(fmt: str) -> None:
    """A format's package, before anything is written (a missing one is not a traceback)."""
    package, install = NEEDS.get(fmt, (None, ""))
    if package is None:
        return
    try:
        importlib.import_module(package)
    except ImportError:
        raise ExportError(f"the {fmt} export needs the {package} package, which is not installed "
                          f"here: {install}") from None


def default_folder(root: Path, fmt: str) -> Path:
    return OutputLayout(root).export_dir(fmt)


@contextmanager
def run_locked(root: Path, command: str) -> Iterator[None]:
    """The run's lock, held while the export reads and writes. A run folder on a read-only
    file system has no writer to wait for: the export reads it without the lock."""
    lock = RunLock(root, command)
    try:
        lock.acquire()
    except OSError as exc:
        if exc.errno != errno.EROFS:
            raise
    try:
        yield
    finally:
        lock.release()


@contextmanager
def out_locked(final: Path) -> Iterator[None]:
    """An exclusive ``flock`` on the folder that holds ``final``, held while an export checks,
    writes and places it: two exports of different runs into one ``--out`` would otherwise empty
    and fill it at once and leave a mix of both. A lock on the folder itself leaves no file behind
    and the kernel drops it when the process dies; a file system without locks is written
    unlocked, as before."""
    fd = os.open(final.parent, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
        except OSError as exc:
            if exc.errno not in (errno.ENOLCK, errno.EOPNOTSUPP, errno.EINVAL):
                raise
        yield
    finally:
        os.close(fd)  # releases the lock


def made_here(final: Path) -> bool:
    """Whether an export may replace ``final`` whole: it is new, or an export made it. An
    existing folder it was given (empty, made by you, a mount point) is never removed: its
    marker says so, and it is emptied and filled instead (``place``)."""
    real = through_link(final)
    mark = read_json_object(real / MARK)
    return not real.exists() or (mark is not None and mark.get("made", True) is True)


def place(tmp: Path, final: Path, made: bool) -> None:
    """Put a written export where it belongs: in place of an earlier export it made (swapped in
    whole), else into the folder it was given: the earlier export's files go, then the new ones
    come, the marker last (a crash in between leaves a folder the next export may replace)."""
    if made:
        replace_dir(tmp, final)
        return
    real = through_link(final)
    for entry in real.iterdir():
        if entry.name == MARK:
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()
    for entry in tmp.iterdir():
        if entry.name != MARK:
            os.replace(entry, real / entry.name)
    os.replace(tmp / MARK, real / MARK)
    tmp.rmdir()


def export(root: Path, fmt: str, out: Path | None = None, include_all: bool = False,
           shards: ShardLimits | None = None, blur: bool = False) -> ExportReport:
    """Write the run in ``root`` as ``fmt`` into ``out`` (default ``<root>/exports/<fmt>``).

    Kept crops only unless ``include_all`` (rejected and dropped ones too). ``shards`` bounds the
    shards of a ``SHARDED`` format (default ``ShardLimits()``); other formats refuse it.
    ``blur``: the frames' faces pixelated but those the identity step named
    (``frames.faces_to_hide``).
    """
    if fmt not in FORMATS:
        raise ExportError(f"unknown export format '{fmt}'; formats are {', '.join(FORMATS)}")
    if shards is not None and fmt not in SHARDED:
        raise ExportError(f"--shard-size and --shard-count are for the {' and '.join(SHARDED)} "
                          f"formats, not {fmt}")
    options = {"limits": shards or ShardLimits()} if fmt in SHARDED else {}

    check_installed(fmt)
    manifest_path(root)  # before the lock, which would make the folder
    final = Path(os.path.abspath(out if out is not None else default_folder(root, fmt)))
    check_out(final, root)
    with run_locked(root, f"export --format {fmt}"):
        frames = read_frames(root, include_all, blur)
        if not frames:
            raise ExportError(f"nothing to export: no {'' if include_all else 'kept '}crops in "
                              f"{OutputLayout(root).manifest_jsonl}")
        final.parent.mkdir(parents=True, exist_ok=True)
        with out_locked(final):
            check_replaceable(final)  # again, under the locks
            made = made_here(final)
            with building(final, unique=True) as tmp:
                importlib.import_module(f"{__name__}.{fmt}").write(frames, root, tmp, **options)
                write_json(tmp / MARK, {"format": fmt, "run": str(root), "all": include_all,
                                        "made": made})
                place(tmp, final, made)
    return ExportReport(fmt, final, len(frames), sum(len(f.boxes) for f in frames))


__all__ = ["CROP_FORMATS", "FORMATS", "SHARDED", "ExportError", "ExportReport", "default_folder", "export"]
