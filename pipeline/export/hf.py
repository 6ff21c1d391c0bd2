"""Hugging Face ``datasets``: one row per crop, saved with ``save_to_disk``.

Columns: ``image`` (the crop, its bytes embedded so the folder can be moved), ``label``
(a ClassLabel of the labels), ``split``, the provenance (source id and URL, title, uploader,
license, time, frame index) and the detection (``class``, ``score``, ``track_id``, ``box``
as x, y, w, h in frame pixels, the frame's size). ``push`` sends it to the Hub as one split per
``split`` value.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from .frames import ExportFrame

PROVENANCE = ("crop_id", "source_id", "source_url", "title", "uploader", "license", "t_s",
              "frame_index", "track_id", "class", "score", "status")


def rows(frames: list[ExportFrame], root: Path) -> list[dict[str, Any]]:
    out = []
    for frame in frames:
        for box in frame.boxes:
            file = box.row.get("file")
            image = ({"bytes": (root / file).read_bytes(), "path": Path(file).name}
                     if file else None)  # a dropped crop (with --all) has no file
            out.append({"image": image, "label": box.row["label"], "split": frame.split,
                        **{k: box.row.get(k) for k in PROVENANCE},
                        "box": [box.x, box.y, box.w, box.h],
                        "frame_width": frame.width, "frame_height": frame.height})
    return out


def write(frames: list[ExportFrame], root: Path, out: Path) -> None:
    import datasets

    records = rows(frames, root)
    labels = sorted({r["label"] for r in records})
    features = datasets.Features({
        "image": datasets.Image(), "label": datasets.ClassLabel(names=labels),
        "split": datasets.Value("string"),
        **{k: datasets.Value("float64" if k in ("t_s", "score") else
                             "int64" if k in ("frame_index", "track_id") else "string")
           for k in PROVENANCE},
        "box": datasets.Sequence(datasets.Value("float64"), length=4),
        "frame_width": datasets.Value("int64"), "frame_height": datasets.Value("int64")})
    columns = {k: [r[k] for r in records] for k in features}
    datasets.Dataset.from_dict(columns, features=features).save_to_disk(str(out))


def push(folder: Path, repo: str) -> None:
    """Upload a saved export to the Hub as ``repo``, one Hub split per ``split`` value."""
    import datasets

    ds = datasets.load_from_disk(str(folder))
    splits = sorted(set(ds["split"]))
    datasets.DatasetDict({s: ds.filter(lambda row, s=s: row["split"] == s) for s in splits}
                         ).push_to_hub(repo)
