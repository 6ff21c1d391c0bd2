"""The global steps after all sources: splits, the ImageFolder tree, the manifest and the summary.

They are recomputed from the per-source results on every run (cheap: they only read small JSONL
files and make hard links), so they always agree with what is on disk, whatever was resumed.

Crops the crop stage dropped (quality filters, ``crop.per_track``) come with their reason; the
global ``dedupe`` step then drops near-duplicates among the kept ones (``pipeline.dedupe``). Both
stay in the manifest (``status`` ``dropped``, ``drop_reason``, ``duplicate_of``) and leave
``dataset/`` and the sheets.

A review can leave crops out: the crop ids listed in a rejects file (``<output>/rejects.txt``, as
saved by ``sheets/index.html``) get ``status`` ``rejected`` in the manifest and no place in
``dataset/``. Rejecting is a global step only, never part of a stage fingerprint, so applying or
changing a review recomputes nothing, and the crop files stay under ``crops/`` to be restored.
"""
from __future__ import annotations

import codecs
import csv
import hashlib
import io
import json
import os
import shutil
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .config import Config
from .dedupe import dedupe
from .quality import DROPPED, KEPT, reason_counts
from .records import BLUR_COLUMNS, MANIFEST_COLUMNS, METADATA_COLUMNS, manifest_columns, parquet_schema
from .sources import Video
from .state import (building, read_json_object, read_jsonl, replace_dir, write_atomic,
                    write_json)

SPLITS = ("train", "val", "test")

REJECTED = "rejected"  # statuses: KEPT, REJECTED (review), DROPPED (filters, selection, dedupe)
REJECTS_FILE = "rejects.txt"
NAMES_FILE = "identities.txt"  # names given to person clusters (pipeline.identity)
_IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp")


def _rank_key(seed: int, sid: str) -> str:
    return hashlib.sha256(f"{seed}:{sid}".encode()).hexdigest()


def split_counts(n: int, ratios: dict[str, float]) -> dict[str, int]:
    """How many of ``n`` sources each split gets: floors, then the largest remainders."""
    exact = {k: n * r for k, r in ratios.items()}
    counts = {k: int(v) for k, v in exact.items()}
    left = n - sum(counts.values())
    for k in sorted(exact, key=lambda k: (-(exact[k] - counts[k]), SPLITS.index(k)))[:left]:
        counts[k] += 1
    return counts


def empty_splits(n: int, ratios: dict[str, float]) -> str | None:
    """The line naming the splits with a ratio above 0 that ``n`` sources leave empty, and why.

    Reported, not adjusted: filling the split would move sources away from the ratios the config
    asks for, and change the split of datasets already built.
    """
    counts = split_counts(n, ratios)
    empty = [k for k, r in ratios.items() if n and r > 0 and counts[k] == 0]
    if not empty:
        return None
    asked = ", ".join(f"{k} {ratios[k]:g} x {n} = {n * ratios[k]:.2g}" for k in empty)
    kept = {k: 0.0 if k in empty else r for k, r in ratios.items()}
    kept["train"] += 1.0 - sum(kept.values())
    written = ", ".join(f"{k}: {r:g}" for k, r in kept.items())
    return (f"split {' and '.join(empty)} {'is' if len(empty) == 1 else 'are'} empty: too few "
            f"sources with crops, each whole in one split ({asked} of a source); add sources, "
            f"or write split: {{{written}}}")


def assign_splits(source_ids: Iterable[str], ratios: dict[str, float], seed: int = 0) -> dict[str, str]:
    """Every source (all its crops) goes to one split.

    Sources are ordered by a hash of (seed, source id) and cut at the split quotas, so the order
    never depends on which other sources exist: adding or removing a source moves at most the
    sources at the two cut points, and every crop of a video stays in one split (no leakage).
    """
    ordered = sorted(set(source_ids), key=lambda s: _rank_key(seed, s))
    counts = split_counts(len(ordered), ratios)
    out: dict[str, str] = {}
    i = 0
    for split in SPLITS:
        for sid in ordered[i:i + counts.get(split, 0)]:
            out[sid] = split
        i += counts.get(split, 0)
    return out


def crop_label(video: Video, segment: int, cls: str) -> str:
    """A segment's label, else the source's label, else the detected class (face / person)."""
    if 0 <= segment < len(video.segments) and video.segments[segment].label:
        return video.segments[segment].label  # type: ignore[return-value]
    return video.label or cls


@dataclass
class SourceResult:
    """What the global steps need of one finished source."""

    video: Video
    info: dict[str, Any]
    crops: list[dict[str, Any]]
    detector: str


@dataclass
class DatasetReport:
    """All manifest rows (kept and rejected); the counts are of what is in ``dataset/``."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    per_label: dict[str, int] = field(default_factory=dict)
    per_split: dict[str, int] = field(default_factory=dict)
    rejects_file: Path | None = None
    unknown_rejects: list[str] = field(default_factory=list)
    empty_splits: str | None = None
    """Which splits with a ratio above 0 got no source, and why (too few sources)."""
    identity: dict[str, Any] | None = None  # pipeline.identity's summary, when configured

    @property
    def kept(self) -> int:
        return sum(r["status"] == KEPT for r in self.rows)

    @property
    def rejected(self) -> int:
        return sum(r["status"] == REJECTED for r in self.rows)

    @property
    def tracks(self) -> int:
        """Tracks (per source) with at least one crop in ``dataset/``."""
        return len({(r["source_id"], r.get("track_id")) for r in self.rows
                    if r["status"] == KEPT and (r.get("track_id") or 0) >= 0})

    @property
    def dropped(self) -> dict[str, int]:
        """{drop reason: crops} of the dropped rows (``duplicate``, ``blurry``, ...)."""
        return reason_counts(r.get("drop_reason") for r in self.rows if r["status"] == DROPPED)


class RejectsError(ValueError):
    """A rejects file that cannot be read as text; the message says what to do."""


_BOMS = ((codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"),
         (codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"),
         (codecs.BOM_UTF16_BE, "utf-16"))


def decode_text(data: bytes, name: str) -> str:
    """Text a person saved from any common editor: UTF-8 (with or without a BOM), UTF-16 or
    UTF-32 with a BOM (Windows Notepad's "Unicode"), else Windows-1252 (a superset of the
    printable Latin-1). Anything else (UTF-16 without a BOM, binary data) raises RejectsError."""
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            try:
                return data.decode(encoding)
            except UnicodeDecodeError:
                break
    else:
        if b"\0" not in data:
            for encoding in ("utf-8", "cp1252"):
                try:
                    return data.decode(encoding)
                except UnicodeDecodeError:
                    continue
    raise RejectsError(f"{name} is not readable text (not UTF-8, UTF-16 with a BOM or "
                       "Windows-1252); save it as UTF-8")


def read_rejects(path: Path) -> list[str]:
    """Crop ids from a rejects file, in file order without repeats.

    Tolerant because people edit it by hand: blank lines, ``#`` comments (whole or trailing),
    a BOM, CRLF and surrounding spaces are ignored, any common encoding is read
    (``decode_text``), and a line naming a crop file (``crops/<sid>/<crop_id>.jpg`` or
    ``.../<crop_id>.jpg``) counts as its crop id.
    """
    ids: dict[str, None] = {}
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise RejectsError(f"cannot read rejects file {path}: {exc.strerror or exc}") from None
    for line in decode_text(data, f"rejects file {path}").splitlines():
        item = line.split("#", 1)[0].strip()
        if not item:
            continue
        name = item.replace("\\", "/").rsplit("/", 1)[-1]
        if name.lower().endswith(_IMAGE_SUFFIXES):
            name = name.rsplit(".", 1)[0]
        ids[name] = None
    return list(ids)


def rejects_file_for(root: Path, given: Path | str | None = None) -> Path | None:
    """The rejects file a run applies: the one given, else ``<output>/rejects.txt`` when present.

    A file that was given must exist (a typo must not silently put every crop back).
    """
    if given is not None:
        path = Path(given).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"rejects file not found: {path}")
        return path
    default = root / REJECTS_FILE
    return default if default.is_file() else None


def apply_rejects(rows: list[dict[str, Any]], rejects: Iterable[str]) -> list[str]:
    """Mark the listed rows ``rejected`` (no dataset file); returns the ids that match no row.
    A dropped crop stays dropped (it is not in ``dataset/`` either way)."""
    rejects = list(rejects)
    wanted = set(rejects)
    for row in rows:
        if row["crop_id"] in wanted and row["status"] == KEPT:
            row["status"], row["dataset_file"] = REJECTED, None
    known = {row["crop_id"] for row in rows}
    return [i for i in rejects if i not in known]


def load_results(root: Path, videos: list[Video], detectors: dict[str, str]) -> Iterator[SourceResult]:
    """Per-source crop rows and metadata of the videos whose crop stage is done, one source at
    a time (so only one source's ``crops.jsonl`` is in memory besides the manifest rows)."""
    for v in videos:
        crops_file = root / "crops" / v.sid / "crops.jsonl"
        info_file = root / "videos" / f"{v.sid}.info.json"
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


def assign_split(row: dict[str, Any], split: str) -> None:
    """Put a row into its split; a kept crop gets its ``dataset/<split>/<label>/`` file."""
    row["split"] = split
    if row["status"] == KEPT:
        name = Path(row["file"]).name if row.get("file") else None
        row["dataset_file"] = f"dataset/{split}/{row['label']}/{name}"


def manifest_rows(results: Iterable[SourceResult], config: Config) -> tuple[list[dict[str, Any]], int]:
    """Every source's rows, in split (sources with crops split by ``config.split``; the others
    count as ``train``) and sorted as the manifest lists them, and how many sources have crops.
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
    return rows, len(with_crops)


def _link(src: Path, dst: Path) -> None:
    """Hard link (no extra space) or, across file systems, a copy."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def _csv_text(rows: list[dict[str, Any]], columns: tuple[str, ...]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("" if row.get(k) is None else row.get(k)) for k in columns})
    return buf.getvalue()


def build_tree(root: Path, rows: list[dict[str, Any]]) -> None:
    """``dataset/<split>/<label>/<file>`` plus ``dataset/<split>/metadata.csv``, swapped in whole.

    The metadata sits in each split's folder because that is where Hugging Face's imagefolder
    looks for it when the data has split folders (a single root file is ignored there). It has a
    ``label`` column since, with metadata present, imagefolder no longer infers labels from the
    folder names.
    """
    final = root / "dataset"
    with building(final) as tmp:
        for row in rows:
            _link(root / row["file"], tmp / Path(row["dataset_file"]).relative_to("dataset"))
        for split in SPLITS:
            meta = [{**row, "file_name": str(Path(row["dataset_file"]).relative_to(f"dataset/{split}"))}
                    for row in rows if row["split"] == split]
            if meta:
                write_atomic(tmp / split / "metadata.csv", _csv_text(meta, METADATA_COLUMNS))
        replace_dir(tmp, final, ours_in_dataset(root))


def ours_in_dataset(root: Path) -> Callable[[str, Path], bool]:
    """Which files of the current ``dataset/`` this code wrote (paths relative to it): the
    ``dataset_file`` of every row of the manifest that describes it, each split's metadata.csv,
    and hard links of crops. Anything else is a user's and survives the swap to a new tree."""
    listed: set[str] = set()
    try:
        with open(root / "manifest.csv", newline="", encoding="utf-8") as f:
            listed = {r.get("dataset_file") or "" for r in csv.DictReader(f)}
    except (OSError, ValueError, csv.Error):
        pass

    def ours(rel: str, path: Path) -> bool:
        parts = rel.split("/")
        if f"dataset/{rel}" in listed or (len(parts) == 2 and parts[0] in SPLITS
                                           and parts[1] == "metadata.csv"):
            return True
        if len(parts) != 3 or parts[0] not in SPLITS:
            return False
        name = parts[2]  # <sid>_<t_ms>_<k>.<ext>: a link of crops/<sid>/<name>?
        try:
            return os.path.samefile(path, root / "crops" / name.rsplit("_", 2)[0] / name)
        except OSError:
            return False
    return ours

def write_manifests(root: Path, rows: list[dict[str, Any]],
                    columns: tuple[str, ...] = MANIFEST_COLUMNS) -> list[str]:
    """manifest.csv and manifest.jsonl (and manifest.parquet when pyarrow is installed)."""
    write_atomic(root / "manifest.csv", _csv_text(rows, columns))
    write_atomic(root / "manifest.jsonl", "".join(
        json.dumps({k: row.get(k) for k in columns}) + "\n" for row in rows))
    written = ["manifest.csv", "manifest.jsonl"]
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        (root / "manifest.parquet").unlink(missing_ok=True)
        return written
    table = pa.Table.from_pylist([{k: row.get(k) for k in columns} for row in rows],
                                 schema=parquet_schema(pa, columns))
    tmp = root / ".manifest.parquet.tmp"
    pq.write_table(table, tmp)
    os.replace(tmp, root / "manifest.parquet")
    return written + ["manifest.parquet"]


def build_dataset(config: Config, root: Path, videos: list[Video],
                  detectors: dict[str, str], rejects_file: Path | None = None) -> DatasetReport:
    """All global outputs from the finished sources: splits, tree, manifests.

    Splits are assigned before rejects are applied, so a review never moves a source to another
    split; rejected crops stay in the manifest (``status`` ``rejected``) but not in ``dataset/``.
    """
    rows, with_crops = manifest_rows(load_results(root, videos, detectors), config)
    unknown = apply_rejects(rows, read_rejects(rejects_file)) if rejects_file is not None else []
    columns = manifest_columns(config.identity is not None, config.crop.blur_others)
    identity = None
    if config.identity is not None:  # before dedupe: a crop dropped here stands for no copies
        from .identity import apply_identity

        identity = apply_identity(config, root, rows)
    if config.dedupe is not None:
        apply_dedupe(rows, config.dedupe.max_distance, config.dedupe.scope)
    if config.identity is not None and config.identity.per_person is not None:
        from .identity import apply_per_person  # after dedupe: K distinct crops a person

        apply_per_person(rows, config.identity.per_person)
    if identity is not None:  # what dataset/ holds of each person, after every drop
        from .identity import kept_per_cluster

        identity["per_cluster"] = kept_per_cluster(rows)
    kept = [row for row in rows if row["status"] == KEPT]
    build_tree(root, kept)
    write_manifests(root, rows, columns)
    report = DatasetReport(rows, rejects_file=rejects_file, unknown_rejects=unknown,
                           empty_splits=empty_splits(with_crops, config.split.ratios()),
                           identity=identity)
    for row in kept:
        report.per_label[row["label"]] = report.per_label.get(row["label"], 0) + 1
        report.per_split[row["split"]] = report.per_split.get(row["split"], 0) + 1
    return report


def apply_dedupe(rows: list[dict[str, Any]], max_distance: int, scope: str) -> int:
    """Mark kept rows that nearly duplicate a better kept row ``dropped``/``duplicate`` with
    ``duplicate_of`` (see ``pipeline.dedupe``); returns how many. Rejected rows take no part,
    so a crop a reviewer threw out never stands for the copies of a good one."""
    duplicate_of = dedupe([r for r in rows if r["status"] == KEPT], max_distance, scope)  # type: ignore[arg-type]
    for row in rows:
        if row["crop_id"] in duplicate_of:
            row.update(status=DROPPED, drop_reason="duplicate", dataset_file=None,
                       duplicate_of=duplicate_of[row["crop_id"]])
    return len(duplicate_of)


def write_summary(root: Path, summary: dict[str, Any]) -> None:
    write_json(root / "summary.json", summary)
