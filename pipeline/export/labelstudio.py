"""Label Studio: ``tasks.json`` (pre-annotated tasks), ``label_config.xml`` and ``images/``.

Each task is one frame; its ``predictions`` hold the boxes as ``rectanglelabels`` results in
percent of the frame, with ``from_name``/``to_name`` matching the labelling config written
beside it. Images are addressed through Label Studio's local-files serving
(``/data/local-files/?d=images/<file>``), so the export folder is the document root.
"""
from __future__ import annotations

import json
from pathlib import Path
from xml.sax.saxutils import quoteattr

from ..core.detections import CLASS_NAMES
from ..io.files import write_atomic
from .frames import ExportFrame, link

FROM_NAME, TO_NAME = "label", "image"
LOCAL_FILES = "/data/local-files/?d=images/"


def label_config() -> str:
    labels = "".join(f"    <Label value={quoteattr(c)}/>\n" for c in CLASS_NAMES)
    return (f"<View>\n  <Image name=\"{TO_NAME}\" value=\"$image\"/>\n"
            f"  <RectangleLabels name=\"{FROM_NAME}\" toName=\"{TO_NAME}\">\n{labels}"
            "  </RectangleLabels>\n</View>\n")


def task(frame: ExportFrame, url_prefix: str) -> dict:
    results = [{
        "id": box.row["crop_id"], "from_name": FROM_NAME, "to_name": TO_NAME,
        "type": "rectanglelabels", "original_width": frame.width, "original_height": frame.height,
        "image_rotation": 0, "score": box.row.get("score"),
        "value": {"x": 100 * box.x / frame.width, "y": 100 * box.y / frame.height,
                  "width": 100 * box.w / frame.width, "height": 100 * box.h / frame.height,
                  "rotation": 0, "rectanglelabels": [box.cls]},
    } for box in frame.boxes]
    scores = [b.row["score"] for b in frame.boxes if b.row.get("score") is not None]
    return {"data": {"image": url_prefix + frame.name, "source_id": frame.source_id,
                     "t_s": frame.t_ms / 1000, "split": frame.split,
                     "boxes": [b.attributes() for b in frame.boxes]},
            "predictions": [{"model_version": str(frame.boxes[0].row.get("detector") or "pipeline"),
                             "score": min(scores) if scores else None, "result": results}]}


def write(frames: list[ExportFrame], root: Path, out: Path) -> None:
    for frame in frames:
        link(frame.image, out / "images" / frame.name)
    write_atomic(out / "tasks.json", json.dumps([task(f, LOCAL_FILES) for f in frames], indent=1))
    write_atomic(out / "label_config.xml", label_config())
