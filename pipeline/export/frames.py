"""The one reader every export format shares: manifest rows grouped by the sampled frame they
came from, with that frame's image file and size (from the sample stage's ``frames.jsonl``).

Exports read only what a run already wrote (``manifest.jsonl``, ``frames/<sid>/``), so exporting
never reruns a stage and always agrees with the manifest. Boxes are clipped to the frame: a
detection reaching past the border would be rejected (YOLO) or drawn off the image (Label Studio,
FiftyOne) by the tools these exports feed.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..steps.tree import link  # hard link (no extra space), else a copy
from ..core.detections import CLASS_NAMES
from ..algo.quality import KEPT
from ..io.files import read_jsonl


class ExportError(Exception):
    """An export that cannot be made (no manifest yet, a frame gone); the message says what to do."""


@dataclass(frozen=True)
class ExportBox:
    """One manifest row's detection box, in frame pixels, clipped to the frame."""

    x: float
    y: float
    w: float
    h: float
    row: dict[str, Any]

    @property
    def cls(self) -> str:
        return self.row["class"]

    @property
    def class_index(self) -> int:
        return CLASS_NAMES.index(self.cls)

    def attributes(self) -> dict[str, Any]:
        """What a box carries besides its class, for formats that keep attributes."""
        keys = ("crop_id", "label", "track_id", "identity", "score", "status", "source_id", "t_s")
        return {k: self.row.get(k) for k in keys if self.row.get(k) is not None}


@dataclass
class ExportFrame:
    """A sampled frame holding at least one exported box."""

    source_id: str
    t_ms: int
    split: str
    image: Path  # absolute path of frames/<sid>/<t_ms>.jpg
    width: int
    height: int
    boxes: list[ExportBox] = field(default_factory=list)

    @property
    def name(self) -> str:
        """A file name unique across the export: ``<sid>_<t_ms:09d>.jpg``."""
        return f"{self.source_id}_{self.t_ms:09d}{self.image.suffix}"


def clip_box(row: dict[str, Any], width: int, height: int) -> tuple[float, float, float, float]:
    """The row's ``box_*`` clipped to a ``width`` x ``height`` frame, as x, y, w, h."""
    x0, y0 = max(0.0, float(row["box_x"])), max(0.0, float(row["box_y"]))
    x1 = min(float(width), float(row["box_x"]) + float(row["box_w"]))
    y1 = min(float(height), float(row["box_y"]) + float(row["box_h"]))
    return x0, y0, max(0.0, x1 - x0), max(0.0, y1 - y0)


def exported(row: dict[str, Any], include_all: bool) -> bool:
    """Kept crops only, unless ``include_all`` (rejected and dropped too)."""
    return include_all or row.get("status") == KEPT


def manifest_path(root: Path) -> Path:
    """``manifest.jsonl``, which must exist: an export of a folder no run finished is refused."""
    path = root / "manifest.jsonl"
    if not path.is_file():
        raise ExportError(f"no manifest in {root}/ yet: run the pipeline first")
    return path


def read_manifest(root: Path) -> list[dict[str, Any]]:
    return read_jsonl(manifest_path(root))


def read_frames(root: Path, include_all: bool = False) -> list[ExportFrame]:
    """The frames with exported boxes, in manifest order (source, time)."""
    frames: dict[tuple[str, int], ExportFrame] = {}
    sizes: dict[str, dict[int, dict[str, Any]]] = {}
    for row in read_manifest(root):
        if not exported(row, include_all) or row.get("box_x") is None:
            continue
        sid, t_ms = row["source_id"], int(round(float(row["t_s"]) * 1000))
        key = (sid, t_ms)
        if key not in frames:
            if sid not in sizes:
                sizes[sid] = _frame_rows(root, sid)
            info = sizes[sid].get(t_ms)
            if info is None:
                raise ExportError(f"frame {t_ms} ms of {sid} is not in {root}/frames/{sid}/: "
                                  "rerun the pipeline to sample it again")
            frames[key] = ExportFrame(sid, t_ms, row["split"], root / "frames" / sid / info["file"],
                                      int(info["width"]), int(info["height"]))
        frame = frames[key]
        frame.boxes.append(ExportBox(*clip_box(row, frame.width, frame.height), row=row))
    return list(frames.values())


def _frame_rows(root: Path, sid: str) -> dict[int, dict[str, Any]]:
    path = root / "frames" / sid / "frames.jsonl"
    try:
        return {int(r["t_ms"]): r for r in read_jsonl(path)}
    except (OSError, ValueError) as exc:
        raise ExportError(f"cannot read {path} ({exc}): rerun the pipeline to sample it again") from exc


__all__ = ["ExportBox", "ExportError", "ExportFrame", "clip_box", "exported", "link", "manifest_path",
           "read_frames", "read_manifest"]
