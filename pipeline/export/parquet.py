"""Parquet shards laid out as the Hugging Face Hub stores a dataset:
``data/<split>-00000-of-00002.parquet``, ...

The columns are the ``hf`` export's, the image a struct of ``bytes`` (the crop file, embedded)
and ``path``, the layout of the ``datasets`` ``Image`` feature; the file's metadata carries
the features (``huggingface`` key), so ``datasets.load_dataset("parquet", ...)`` gives back
images and the label names, and pyarrow, pandas or DuckDB read the same files as plain
tables. Written with pyarrow alone: ``datasets`` is needed to read them as a dataset, not to
write them.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .frames import ExportFrame
from .hf import feature_spec, image, label_names, metadata
from .shards import Sample, ShardLimits, file_size, plan, samples_by_split

# Rows per row group: the value datasets uses for image datasets (PARQUET_ROW_GROUP_SIZE_FOR_
# IMAGE_DATASETS), so reading one row (the Hub's viewer, a random-access read) reads at most
# 100 images, not the whole file.
ROW_GROUP = 100


def arrow_type(spec: dict[str, Any]) -> Any:
    """The Arrow type ``datasets`` stores a feature as (for the few kinds ``feature_spec`` has)."""
    import pyarrow as pa

    kind = spec["_type"]
    if kind == "Image":
        return pa.struct([("bytes", pa.binary()), ("path", pa.string())])
    if kind == "ClassLabel":
        return pa.int64()
    if kind == "Sequence":
        return pa.list_(arrow_type(spec["feature"]), spec["length"])
    return pa.type_for_alias(spec["dtype"])


def arrow_schema(labels: list[str]) -> Any:
    import pyarrow as pa

    spec = feature_spec(labels)
    return pa.schema([(name, arrow_type(feature)) for name, feature in spec.items()],
                     metadata={"huggingface": json.dumps({"info": {"features": spec}})})


def record(sample: Sample, root: Path, classes: dict[str, int]) -> dict[str, Any]:
    row = {"image": image(sample.box, root), **metadata(sample.frame, sample.box)}
    row["label"] = classes[row["label"]]
    return row


def write_shard(path: Path, samples: list[Sample], root: Path, classes: dict[str, int],
                schema: Any) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    with pq.ParquetWriter(path, schema) as writer:
        for start in range(0, len(samples), ROW_GROUP):
            rows = [record(s, root, classes) for s in samples[start:start + ROW_GROUP]]
            writer.write_table(pa.Table.from_pylist(rows, schema=schema), row_group_size=ROW_GROUP)


def write(frames: list[ExportFrame], root: Path, out: Path, limits: ShardLimits) -> None:
    names = label_names(frames)
    classes = {name: i for i, name in enumerate(names)}
    schema = arrow_schema(names)
    (out / "data").mkdir()
    for split, samples in samples_by_split(frames).items():
        runs = plan([file_size(s, root) for s in samples], limits.max_bytes, limits.count)
        for i, run in enumerate(runs):
            path = out / "data" / f"{split}-{i:05d}-of-{len(runs):05d}.parquet"
            write_shard(path, [samples[j] for j in run], root, classes, schema)
