"""COCO detection: ``<split>/_annotations.coco.json`` beside that split's full-frame images.

The layout Roboflow exports and supervision's ``DetectionDataset.from_coco`` reads; pycocotools
loads each annotations file. Categories are the detector classes (``face``, ``person``, ids from
1 in that fixed order); each annotation's ``attributes`` hold its crop id, label, track id and
score, as CVAT's COCO export does.
"""
from __future__ import annotations

from pathlib import Path

from ..core.detections import CLASS_NAMES
from ..io.files import write_json
from .frames import ExportFrame, link

ANNOTATIONS = "_annotations.coco.json"


def write(frames: list[ExportFrame], root: Path, out: Path) -> None:
    for split in sorted({f.split for f in frames}):
        write_split([f for f in frames if f.split == split], out / split)


def write_split(frames: list[ExportFrame], folder: Path) -> None:
    images, annotations = [], []
    for image_id, frame in enumerate(frames, start=1):
        link(frame.image, folder / frame.name)
        images.append({"id": image_id, "file_name": frame.name, "width": frame.width,
                       "height": frame.height})
        for box in frame.boxes:
            annotations.append({
                "id": len(annotations) + 1, "image_id": image_id,
                "category_id": box.class_index + 1,
                "bbox": [round(box.x, 2), round(box.y, 2), round(box.w, 2), round(box.h, 2)],
                "area": round(box.w * box.h, 2), "iscrowd": 0, "segmentation": [],
                "attributes": box.attributes()})
    write_json(folder / ANNOTATIONS, {
        "info": {"description": "sampled video frames with detection boxes"},
        "images": images, "annotations": annotations,
        "categories": [{"id": i + 1, "name": name, "supercategory": name}
                       for i, name in enumerate(CLASS_NAMES)]})
