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
from .frames import ExportBox, ExportFrame, missing_crop

PROVENANCE = ("crop_id", "source_id", "source_url", "title", "uploader", "license", "t_s",
              "frame_index", "track_id", "class", "score", "status")


def metadata(frame: ExportFrame, box: ExportBox) -> dict[str, Any]:
    """A crop's columns other than its image: label, split, provenance and detection."""
    return {"label": box.row["label"], "split": frame.split,
            **{k: box.row.get(k) for k in PROVENANCE},
            "box": [box.x, box.y, box.w, box.h],
            "frame_width": frame.width, "frame_height": frame.height}


def image(box: ExportBox, root: Path) -> dict[str, Any] | None:
    """The crop as the ``Image`` feature stores it, its bytes embedded; None for a dropped crop
    (with --all) that has no file."""
    file = box.row.get("file")
    return {"bytes": (root / file).read_bytes(), "path": Path(file).name} if file else None


def rows(frames: list[ExportFrame], root: Path) -> Iterator[dict[str, Any]]:
    """One record per box; crop images are read one at a time (a large run never sits in memory)."""
    for frame in frames:
        for box in frame.boxes:
            yield {"image": image(box, root), **metadata(frame, box)}


def label_names(frames: list[ExportFrame]) -> list[str]:
    """The ``label`` classes, sorted: a label's index is its place here."""
    return sorted({b.row["label"] for f in frames for b in f.boxes})


def feature_spec(labels: list[str]) -> dict[str, Any]:
    """The columns as ``datasets`` writes them into a file's metadata (``Features.to_dict``).

    The box is a ``Sequence`` of 4, which every ``datasets`` release reads (4.0 writes it as
    ``List``, which releases before 4.0 cannot read)."""
    kinds = {"t_s": "float64", "score": "float64", "frame_index": "int64", "track_id": "int64"}

    def value(dtype: str) -> dict[str, str]:
        return {"dtype": dtype, "_type": "Value"}

    return {"image": {"_type": "Image"}, "label": {"names": labels, "_type": "ClassLabel"},
            "split": value("string"), **{k: value(kinds.get(k, "string")) for k in PROVENANCE},
            "box": {"feature": value("float64"), "length": 4, "_type": "Sequence"},
            "frame_width": value("int64"), "frame_height": value("int64")}


def features_for(labels: list[str]) -> Any:
    # lazy: optional dependency (the hf extra)
    import datasets

    return datasets.Features.from_dict(feature_spec(labels))


def write(frames: list[ExportFrame], root: Path, out: Path) -> None:
    # lazy: optional dependency (the hf extra)
    import datasets

    for frame in frames:  # before datasets, which would wrap the error in its own traceback
        for box in frame.boxes:
            file = box.row.get("file")
            if file and not (root / file).is_file():
                raise missing_crop(box.row["crop_id"], root / file)
    labels = label_names(frames)
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
