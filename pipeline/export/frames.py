"""The one reader every export format shares: manifest rows grouped by the sampled frame they
came from, with that frame's image file and size (from the sample stage's ``frames.jsonl``).

Exports read only what a run already wrote (``manifest.jsonl``, ``frames/<sid>/``,
``detections/<sid>.jsonl``), so exporting never reruns a stage and always agrees with the manifest.
With ``blur`` (``export --blur-faces``) every face detected in an exported frame is pixelated as
``crop.blur_others`` covers bystanders (``pipeline.blur``), except the faces of crops the identity
step named: the frames are written as covered copies instead of links. Boxes are clipped to the frame: a
detection reaching past the border would be rejected (YOLO) or drawn off the image (Label Studio,
FiftyOne) by the tools these exports feed.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ..algo.quality import KEPT
from ..core.detections import CLASS_NAMES, Detections
from ..core.layout import OutputLayout
from ..io.files import read_jsonl, write_image
from ..stages.blur import cover, pixelate
from ..steps.manifest import read_manifest
from ..steps.tree import link  # hard link (no extra space), else a copy


class ExportError(Exception):
    """An export that cannot be made (no manifest yet, a frame gone); the message says what to do."""


def missing_crop(crop_id: str, path: Path) -> ExportError:
    """A crop file gone since the run, said the same way by every format that reads crops."""
    return ExportError(f"crop {crop_id} has no file {path}: run the pipeline again to crop it again")

COVERED_QUALITY = 95
"""JPEG quality of a covered frame (the sample stage's default)."""


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
    hide: list[tuple[float, float, float, float]] = field(default_factory=list)
    """Face boxes to pixelate in the exported copy (``blur``); none: the frame is linked."""

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
    path = OutputLayout(root).manifest_jsonl
    if not path.is_file():
        raise ExportError(f"no manifest in {root}/ yet: run the pipeline first")
    return path


def manifest_rows(root: Path) -> list[dict[str, Any]]:
    """The manifest's rows (``pipeline.steps.manifest.read_manifest``), refused as above without one."""
    rows = read_manifest(root)
    if rows is None:
        manifest_path(root)  # raises: the manifest went away
    return rows or []


def put_image(frame: ExportFrame, dest: Path) -> None:
    """The frame's image at ``dest``: a link, or a copy with the ``hide`` faces pixelated."""
    if not frame.hide:
        link(frame.image, dest)
        return
    image = cv2.imread(str(frame.image))
    if image is None:
        raise ExportError(f"cannot read {frame.image}: rerun the pipeline to sample it again")
    patches = [p for p in (pixelate(image, box) for box in frame.hide) if p is not None]
    covered, _ = cover(image, (0, 0), patches)
    dest.parent.mkdir(parents=True, exist_ok=True)
    write_image(dest, covered, [cv2.IMWRITE_JPEG_QUALITY, COVERED_QUALITY])


def named_boxes(rows: list[dict[str, Any]]) -> dict[tuple[str, int], list[tuple[float, ...]]]:
    """{(source, t_ms): boxes of the crops the identity step named}: faces that stay sharp."""
    named: dict[tuple[str, int], list[tuple[float, ...]]] = {}
    for row in rows:
        if row.get("identity") and row.get("box_x") is not None:
            key = (row["source_id"], int(round(float(row["t_s"]) * 1000)))
            box = tuple(float(row[k]) for k in ("box_x", "box_y", "box_w", "box_h"))
            named.setdefault(key, []).append(box)
    return named


def faces_to_hide(root: Path, frames: list[ExportFrame],
                  named: dict[tuple[str, int], list[tuple[float, ...]]]) -> None:
    """Fill each frame's ``hide``: its detected faces (``detections/<sid>.jsonl``) but the named."""
    detections: dict[str, dict[int, dict[str, Any]]] = {}
    for frame in frames:
        if frame.source_id not in detections:
            path = OutputLayout(root).detections(frame.source_id)
            try:
                detections[frame.source_id] = {int(r["t_ms"]): r for r in read_jsonl(path)}
            except (OSError, ValueError) as exc:
                raise ExportError(f"cannot read {path} ({exc}): rerun the pipeline") from exc
        row = detections[frame.source_id].get(frame.t_ms)
        dets = Detections.from_json(row) if row else Detections.empty()
        sharp = np.asarray(named.get((frame.source_id, frame.t_ms), []), np.float32).reshape(-1, 4)
        for box, cls in zip(dets.boxes, dets.class_id):
            # a named crop's box is its detection's, rounded to 0.1 px in the manifest
            if cls == CLASS_NAMES.index("face") and not (np.abs(sharp - box).max(axis=1) <= 0.06).any():
                frame.hide.append((float(box[0]), float(box[1]), float(box[2]), float(box[3])))


def read_frames(root: Path, include_all: bool = False, blur: bool = False) -> list[ExportFrame]:
    """The frames with exported boxes, in manifest order (source, time); with ``blur``, each
    with the faces to pixelate (``faces_to_hide``)."""
    frames: dict[tuple[str, int], ExportFrame] = {}
    sizes: dict[str, dict[int, dict[str, Any]]] = {}
    layout = OutputLayout(root)
    manifest = manifest_rows(root)
    for row in manifest:
        if not exported(row, include_all) or row.get("box_x") is None:
            continue
        sid, t_ms = row["source_id"], int(round(float(row["t_s"]) * 1000))
        key = (sid, t_ms)
        if key not in frames:
            if sid not in sizes:
                sizes[sid] = _frame_rows(root, sid)
            info = sizes[sid].get(t_ms)
            if info is None:
                raise ExportError(f"frame {t_ms} ms of {sid} is not in {layout.frames_dir(sid)}/: "
                                  "rerun the pipeline to sample it again")
            frames[key] = ExportFrame(sid, t_ms, row["split"], layout.frames_dir(sid) / info["file"],
                                      int(info["width"]), int(info["height"]))
        frame = frames[key]
        frame.boxes.append(ExportBox(*clip_box(row, frame.width, frame.height), row=row))
    if blur:
        faces_to_hide(root, list(frames.values()), named_boxes(manifest))
    return list(frames.values())


def _frame_rows(root: Path, sid: str) -> dict[int, dict[str, Any]]:
    path = OutputLayout(root).frames_index(sid)
    try:
        return {int(r["t_ms"]): r for r in read_jsonl(path)}
    except (OSError, ValueError) as exc:
        raise ExportError(f"cannot read {path} ({exc}): rerun the pipeline to sample it again") from exc


__all__ = ["ExportBox", "ExportError", "ExportFrame", "clip_box", "exported", "link", "manifest_path",
           "manifest_rows", "missing_crop", "put_image", "read_frames"]
