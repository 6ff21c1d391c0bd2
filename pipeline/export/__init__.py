"""Exports of a finished run into the formats of the tools people already use.

Every format is a module with one function, ``write(frames, root, out)``: the frames with their
boxes (``frames.read_frames``, the one reader of the manifest and the sampled frames), the run's
output folder, and an empty folder to fill. ``export`` fills a temporary folder and renames it
into place, so an export is never half written and a rerun replaces the previous one whole.
Nothing here runs a stage.
"""
from __future__ import annotations

import importlib
import shutil
from dataclasses import dataclass
from pathlib import Path

from ..state import fresh_tmp_dir, replace_dir, write_json

FORMATS = ("coco", "yolo", "labelstudio", "hf", "fiftyone")
MARK = ".pipeline-export.json"  # in every export folder: what wrote it, so a rerun may replace it


class ExportError(Exception):
    """An export that cannot be made (no manifest yet, a frame gone); the message says what to do."""


@dataclass(frozen=True)
class ExportReport:
    """What an export wrote."""

    format: str
    folder: Path
    frames: int
    boxes: int


def check_replaceable(folder: Path) -> None:
    """An export replaces its folder whole, so the folder must be new, empty, or an export (it
    holds ``MARK``): ``--out ~/Desktop`` must never wipe a desktop."""
    if folder.is_file():
        raise ExportError(f"{folder} is a file: give a folder to export into")
    if folder.is_dir() and any(folder.iterdir()) and not (folder / MARK).is_file():
        raise ExportError(f"{folder} is not empty and holds no earlier export (which would be "
                          "replaced whole): give a new or empty folder")


def default_folder(root: Path, fmt: str) -> Path:
    return root / "exports" / fmt


def export(root: Path, fmt: str, out: Path | None = None, include_all: bool = False) -> ExportReport:
    """Write the run in ``root`` as ``fmt`` into ``out`` (default ``<root>/exports/<fmt>``).

    Kept crops only unless ``include_all`` (rejected and dropped ones too).
    """
    if fmt not in FORMATS:
        raise ExportError(f"unknown export format '{fmt}'; formats are {', '.join(FORMATS)}")
    from .frames import read_frames  # the package itself stays light: the CLI imports FORMATS

    frames = read_frames(root, include_all)
    if not frames:
        raise ExportError(f"nothing to export: no {'' if include_all else 'kept '}crops in "
                          f"{root}/manifest.jsonl")
    final = Path(out) if out is not None else default_folder(root, fmt)
    check_replaceable(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = fresh_tmp_dir(final)
    try:
        importlib.import_module(f"{__name__}.{fmt}").write(frames, root, tmp)
        write_json(tmp / MARK, {"format": fmt, "run": str(root), "all": include_all})
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    replace_dir(tmp, final)
    return ExportReport(fmt, final, len(frames), sum(len(f.boxes) for f in frames))


__all__ = ["FORMATS", "ExportError", "ExportReport", "default_folder", "export"]
