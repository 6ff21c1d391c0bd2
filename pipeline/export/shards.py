"""What the sharded exports (``webdataset``, ``parquet``) share: the crops of each split in a
fixed shuffled order, and cutting them into shards of a bounded size and count.

Training jobs read a few large files, not one file per crop, and parallel readers share the
data out by shard: webdataset gives each DataLoader worker whole shards and stops with "No
samples found in dataset; perhaps you have fewer shards than workers" when a worker has none;
``datasets`` streams a Parquet dataset with at most one worker per file. So the default shard
is small enough that a few thousand crops already make several shards (``ShardLimits``).
"""
from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from .frames import ExportBox, ExportError, ExportFrame, missing_crop

MB = 1_000_000  # --shard-size is in megabytes of 10^6 bytes, as webdataset's maxsize=3e9
SPLIT_ORDER = ("train", "val", "test")


@dataclass(frozen=True)
class ShardLimits:
    """A shard ends before it would pass ``size_mb`` megabytes or ``count`` crops.

    The defaults: crops of the default 224 px measured 8.1 kB on average over the test face
    videos (24 crops), 7.0 kB over the test street video (12 person crops) and 15.5 kB over the
    demo (9), so 1000 crops make a shard of 7-16 MB, read in one sequential sweep, and a run of
    8000 crops already feeds 8 DataLoader workers (webdataset stops a worker that gets no shard,
    checked: one shard read by worker 1 of 4 raises "No samples found"). The 100 MB cap is for
    larger crops (``crop.size: null``, png). webdataset's ShardWriter defaults (100000 records,
    3 GB) would make nearly every run one shard per split."""

    size_mb: float = 100.0
    count: int = 1000

    def __post_init__(self) -> None:
        if not (isinstance(self.size_mb, (int, float)) and math.isfinite(self.size_mb)
                and self.size_mb > 0):
            raise ExportError(f"--shard-size must be a number of megabytes above 0 (such as 100), "
                              f"not {self.size_mb}")
        if isinstance(self.count, bool) or not isinstance(self.count, int) or self.count < 1:
            raise ExportError(f"--shard-count must be a whole number of crops, 1 or more "
                              f"(such as 1000), not {self.count}")

    @property
    def max_bytes(self) -> int:
        return int(self.size_mb * MB)


@dataclass(frozen=True)
class Sample:
    """One exported crop: its box (with its manifest row) and the frame it was found on."""

    frame: ExportFrame
    box: ExportBox

    @property
    def crop_id(self) -> str:
        return self.box.row["crop_id"]

    @property
    def file(self) -> str | None:
        """The crop file, relative to the run's folder (None: a dropped crop with no file)."""
        return self.box.row.get("file")


def file_size(sample: Sample, root: Path) -> int:
    """The crop file's size (0 for a crop with no file), which shards are planned by; a file
    gone since the run is an error that says what to do."""
    if not sample.file:
        return 0
    path = root / sample.file
    try:
        return path.stat().st_size
    except FileNotFoundError:
        raise missing_crop(sample.crop_id, path) from None


def mixed_order(crop_id: str) -> str:
    """A crop's place in its split: sorted by a hash of its id, the crops of a split come in an
    order that mixes sources and times yet is the same at every export. A shard then holds crops
    of many videos, so a reader's shuffle buffer (which only mixes nearby samples) mixes them
    too, and the same dataset always gives the same shards."""
    return hashlib.sha256(crop_id.encode("utf-8", "surrogatepass")).hexdigest()


def samples_by_split(frames: list[ExportFrame]) -> dict[str, list[Sample]]:
    """The crops of each split (train, val, test first), each split in ``mixed_order``."""
    by_split: dict[str, list[Sample]] = {}
    for frame in frames:
        for box in frame.boxes:
            by_split.setdefault(frame.split, []).append(Sample(frame, box))
    known = {s: i for i, s in enumerate(SPLIT_ORDER)}
    return {split: sorted(by_split[split], key=lambda s: (mixed_order(s.crop_id), s.crop_id))
            for split in sorted(by_split, key=lambda s: (known.get(s, len(known)), s))}


def plan(sizes: Sequence[int], max_bytes: int, max_count: int) -> list[range]:
    """Consecutive runs of the items whose ``sizes`` are given, each run at most ``max_count``
    items and ``max_bytes`` bytes; an item larger than ``max_bytes`` is a run of its own."""
    runs: list[range] = []
    start, total = 0, 0
    for i, size in enumerate(sizes):
        if i > start and (i - start >= max_count or total + size > max_bytes):
            runs.append(range(start, i))
            start, total = i, 0
        total += size
    if sizes:
        runs.append(range(start, len(sizes)))
    return runs


__all__ = ["MB", "Sample", "ShardLimits", "file_size", "mixed_order", "plan", "samples_by_split"]
