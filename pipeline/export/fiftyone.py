"""FiftyOne: one ``FiftyOneImageDetectionDataset`` folder per split (``<split>/data/`` with the
frames, ``<split>/labels.json``), which ``fiftyone.Dataset.from_dir`` reads.

``labels.json`` is ``{"classes": [...], "labels": {<file stem>: [detection, ...]}}``; a
detection has ``label`` (an index into ``classes``), ``bounding_box`` (top-left x, y, width,
height relative to the frame, 0-1), ``confidence`` and ``attributes`` (crop id, ``crop_label``,
track id), which FiftyOne makes fields of each Detection.
"""
from __future__ import annotations

from pathlib import Path

from ..core.detections import CLASS_NAMES
from ..io.files import write_json
from .frames import ExportBox, ExportFrame, link


def detection(box: ExportBox, frame: ExportFrame) -> dict:
    return {"label": box.class_index,
            "bounding_box": [box.x / frame.width, box.y / frame.height,
                             box.w / frame.width, box.h / frame.height],
            "confidence": box.row.get("score"), "attributes": attributes(box)}


def attributes(box: ExportBox) -> dict:
    """The box's attributes as Detection fields: ``label`` is FiftyOne's own (the class), so
    the crop's label is ``crop_label``."""
    attrs = box.attributes()
    attrs["crop_label"] = attrs.pop("label", None)
    return attrs


def write(frames: list[ExportFrame], root: Path, out: Path) -> None:
    for split in sorted({f.split for f in frames}):
        folder = out / split
        labels = {}
        for frame in (f for f in frames if f.split == split):
            link(frame.image, folder / "data" / frame.name)
            labels[Path(frame.name).stem] = [detection(b, frame) for b in frame.boxes]
        write_json(folder / "labels.json", {"classes": list(CLASS_NAMES), "labels": labels})
