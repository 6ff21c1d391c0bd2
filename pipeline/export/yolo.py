"""YOLO (Ultralytics layout): ``images/<split>/``, ``labels/<split>/`` and ``data.yaml``.

One ``<class> <x_center> <y_center> <width> <height>`` line per box, normalised to the frame
(0-1), class indices into ``names`` (the detector classes in a fixed order). ``data.yaml`` has
no ``path`` key, so Ultralytics takes the folder the file is in: the export can be moved.
"""
from __future__ import annotations

from pathlib import Path

import yaml

from ..core.detections import CLASS_NAMES
from ..io.files import write_atomic
from .frames import ExportFrame, link


def label_line(cls: int, x: float, y: float, w: float, h: float, width: int, height: int) -> str:
    return (f"{cls} {(x + w / 2) / width:.6f} {(y + h / 2) / height:.6f} "
            f"{w / width:.6f} {h / height:.6f}")


def write(frames: list[ExportFrame], root: Path, out: Path) -> None:
    for frame in frames:
        link(frame.image, out / "images" / frame.split / frame.name)
        lines = [label_line(b.class_index, b.x, b.y, b.w, b.h, frame.width, frame.height)
                 for b in frame.boxes]
        write_atomic(out / "labels" / frame.split / f"{Path(frame.name).stem}.txt",
                     "".join(line + "\n" for line in lines))
    splits = sorted({f.split for f in frames}, key=("train", "val", "test").index)
    data = {**{s: f"images/{s}" for s in splits}, "nc": len(CLASS_NAMES),
            "names": dict(enumerate(CLASS_NAMES))}
    write_atomic(out / "data.yaml", yaml.safe_dump(data, sort_keys=False))
