"""Hugging Face ``datasets``: one row per crop, saved with ``save_to_disk``.

Columns: ``image`` (the crop, its bytes embedded so the folder can be moved), ``label``
(a ClassLabel of the labels), ``split``, the provenance (source id and URL, title, uploader,
license, time, frame index) and the detection (``class``, ``score``, ``track_id``, ``box``
as x, y, w, h in frame pixels, the frame's size). ``push`` sends it to the Hub as one split per
``split`` value.
"""
from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..state.markers import fingerprint
from .frames import ExportFrame

PROVENANCE = ("crop_id", "source_id", "source_url", "title", "uploader", "license", "t_s",
              "frame_index", "track_id", "class", "score", "status")


def rows(frames: list[ExportFrame], root: Path) -> Iterator[dict[str, Any]]:
    """One record per box; crop images are read one at a time (a large run never sits in memory)."""
    for frame in frames:
        for box in frame.boxes:
            file = box.row.get("file")
            image = ({"bytes": (root / file).read_bytes(), "path": Path(file).name}
                     if file else None)  # a dropped crop (with --all) has no file
            yield {"image": image, "label": box.row["label"], "split": frame.split,
                   **{k: box.row.get(k) for k in PROVENANCE},
                   "box": [box.x, box.y, box.w, box.h],
                   "frame_width": frame.width, "frame_height": frame.height}


def features_for(labels: list[str]) -> Any:
    # lazy: optional dependency (the hf extra)
    import datasets

    kinds = {"t_s": "float64", "score": "float64", "frame_index": "int64", "track_id": "int64"}
    return datasets.Features({
        "image": datasets.Image(), "label": datasets.ClassLabel(names=labels),
        "split": datasets.Value("string"),
        **{k: datasets.Value(kinds.get(k, "string")) for k in PROVENANCE},
        "box": datasets.Sequence(datasets.Value("float64"), length=4),
        "frame_width": datasets.Value("int64"), "frame_height": datasets.Value("int64")})


def write(frames: list[ExportFrame], root: Path, out: Path) -> None:
    # lazy: optional dependency (the hf extra)
    import datasets

    labels = sorted({b.row["label"] for f in frames for b in f.boxes})
    ids = fingerprint([b.row["crop_id"] for f in frames for b in f.boxes], labels)
    # datasets writes Arrow shards into a cache as the generator runs, then save_to_disk copies
    # them; the cache is scratch beside the export, named after it (``<out>.cache.*``), so the
    # next export removes it if this one is killed (pipeline.io.files.sweep_dead_scratch).
    with tempfile.TemporaryDirectory(prefix=f"{out.name}.cache.", dir=out.parent) as cache:
        ds = datasets.Dataset.from_generator(rows, features=features_for(labels), cache_dir=cache,
                                             gen_kwargs={"frames": frames, "root": root},
                                             fingerprint=ids)
        ds.save_to_disk(str(out))
        del ds  # its memory-mapped cache files must be closed before the cache goes


def push(folder: Path, repo: str) -> None:
    """Upload a saved export to the Hub as ``repo``, one Hub split per ``split`` value."""
    # lazy: optional dependency (the hf extra)
    import datasets

    ds = datasets.load_from_disk(str(folder))
    splits = sorted(set(ds["split"]))
    datasets.DatasetDict({s: ds.filter(lambda row, s=s: row["split"] == s) for s in splits}
                         ).push_to_hub(repo)
