"""The manifest: one row per crop with its source's metadata, label and split, as CSV (and
Parquet), and the run's summary.
"""
from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..core.layout import MANIFEST_CSV, MANIFEST_JSONL, MANIFEST_PARQUET, OutputLayout
from ..algo.quality import KEPT
from ..config.schema import Config
from ..core.records import BLUR_COLUMNS, MANIFEST_COLUMNS, parquet_schema
from ..io.cells import spreadsheet_safe
from ..io.files import read_json_object, read_jsonl, write_atomic, write_json
from ..core.records import Video
from .splits import assign_split, assign_splits


def crop_label(video: Video, segment: int, cls: str) -> str:
    """A segment's label, else the source's label, else the detected class (face / person)."""
    label = video.segments[segment].label if 0 <= segment < len(video.segments) else None
    return label or video.label or cls


@dataclass
class SourceResult:
    """What the global steps need of one finished source."""

    video: Video
    info: dict[str, Any]
    crops: list[dict[str, Any]]
    detector: str


def load_results(root: Path, videos: list[Video], detectors: dict[str, str]) -> Iterator[SourceResult]:
    """Per-source crop rows and metadata of the videos whose crop stage is done, one source at
    a time (so only one source's ``crops.jsonl`` is in memory besides the manifest rows)."""
    layout = OutputLayout(root)
    for v in videos:
        crops_file = layout.crops_index(v.sid)
        info_file = layout.video_info(v.sid)
        if v.sid not in detectors or not crops_file.exists():
            continue
        info = read_json_object(info_file) or {}
        yield SourceResult(v, info, read_jsonl(crops_file), detectors[v.sid])


def source_rows(r: SourceResult) -> list[dict[str, Any]]:
    """One source's manifest rows, split not assigned yet (``split`` and ``dataset_file`` None:
    :func:`assign_split` fills them once every source's crops are known)."""
    rows = []
    for c in r.crops:
        rows.append({
            **{k: c.get(k) for k in MANIFEST_COLUMNS + BLUR_COLUMNS if k in c},
            "dataset_file": None,
            "label": crop_label(r.video, c.get("segment", -1), c["class"]),
            "split": None, "status": c.get("status") or KEPT,  # crops.jsonl written before dropping existed
            "source_url": r.info.get("webpage_url") or r.video.location,
            "title": r.info.get("title") or r.video.title, "uploader": r.info.get("uploader"),
            "license": r.info.get("license"), "video_width": r.info.get("width"),
            "video_height": r.info.get("height"), "fps": r.info.get("fps"),
            "t_s": round(c["t_ms"] / 1000, 3), "detector": r.detector,
        })
    return rows


def manifest_rows(results: Iterable[SourceResult], config: Config) -> list[dict[str, Any]]:
    """Every source's rows, in split (sources with crops split by ``config.split``; the others
    count as ``train``) and sorted as the manifest lists them.
    The sources are read one at a time: the run's process holds the rows, not also every
    ``crops.jsonl`` they came from."""
    per_source: list[tuple[str, list[dict[str, Any]]]] = []
    for r in results:
        per_source.append((r.video.sid, source_rows(r)))
    with_crops = [sid for sid, rows in per_source if rows]
    splits = assign_splits(with_crops, config.split.ratios(), config.split.seed)
    for sid, rows in per_source:
        for row in rows:
            assign_split(row, splits.get(sid, "train"))
    rows = [row for _, source in per_source for row in source]
    rows.sort(key=lambda row: (row["source_id"], row["t_s"], row["crop_id"]))
    return rows


def csv_text(rows: list[dict[str, Any]], columns: tuple[str, ...]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("" if row.get(k) is None else spreadsheet_safe(row.get(k))) for k in columns})
    return buf.getvalue()


def write_manifests(root: Path, rows: list[dict[str, Any]],
                    columns: tuple[str, ...] = MANIFEST_COLUMNS) -> list[str]:
    """manifest.csv and manifest.jsonl (and manifest.parquet when pyarrow is installed)."""
    layout = OutputLayout(root)
    write_atomic(layout.manifest_csv, csv_text(rows, columns))
    jsonl = "".join(json.dumps({k: row.get(k) for k in columns}) + "\n" for row in rows)
    write_atomic(layout.manifest_jsonl, jsonl)
    written = [MANIFEST_CSV, MANIFEST_JSONL]
    try:
        # lazy: optional dependency (the parquet extra)
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        layout.manifest_parquet.unlink(missing_ok=True)
        return written
    tmp = root / f".{MANIFEST_PARQUET}.tmp"
    pq.write_table(parquet_table(pa, jsonl.encode(), parquet_schema(pa, columns)), tmp)
    os.replace(tmp, layout.manifest_parquet)
    return written + [MANIFEST_PARQUET]


def parquet_table(pa: Any, jsonl: bytes, schema: Any) -> Any:
    """The manifest's rows as an Arrow table, parsed from the JSON lines just written.

    Not ``Table.from_pylist``: any conversion of Python objects makes pyarrow import pandas
    (where installed) to ask whether they are pandas objects, 0.27 CPU-s of every run's serial
    end for nothing; its JSON reader is C++ and gives the same table (the Parquet file is byte
    for byte the one ``from_pylist`` wrote). One block holds the whole text, so the table is one
    chunk, as before.
    """
    # lazy: optional dependency (the parquet extra)
    import pyarrow.json as pj

    if not jsonl:  # the reader refuses an empty text; zero-length columns need no conversion
        return pa.table([pa.nulls(0, field.type) for field in schema], schema=schema)
    return pj.read_json(pa.BufferReader(jsonl),
                        read_options=pj.ReadOptions(use_threads=False,
                                                    block_size=min(len(jsonl) + 1, 2**31 - 1)),
                        parse_options=pj.ParseOptions(explicit_schema=schema))


def read_manifest(root: Path) -> list[dict[str, Any]] | None:
    """The rows of ``manifest.jsonl`` with their JSON types (the CSV would give strings), for
    the sheets, the review page, the exports and ``evaluate``; None when no run has written one
    (each reader says what to do in its own words). A row without ``status`` comes from a
    manifest written before the review feature: it was kept."""
    path = OutputLayout(root).manifest_jsonl
    if not path.is_file():
        return None
    rows = read_jsonl(path)
    for row in rows:
        if not row.get("status"):
            row["status"] = KEPT
    return rows


def write_summary(root: Path, summary: dict[str, Any]) -> None:
    write_json(OutputLayout(root).summary, summary)
