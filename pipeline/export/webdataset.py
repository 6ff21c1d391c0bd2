"""WebDataset: tar shards of crops, ``<split>-000000.tar``, ``<split>-000001.tar``, ...

Each crop is a sample of three files sharing its key: ``<key>.jpg`` (the crop file as the run
wrote it; ``.png`` or ``.webp`` when ``crop.format`` says so), ``<key>.json`` (the columns of
the ``hf`` export: label, split, provenance, box) and ``<key>.cls`` (the label's index into
``classes`` of ``shards.json``, as text, which webdataset decodes to an int). ``shards.json``
lists each split's shards and crop count. A crop with no file (a dropped one, with --all) has
no image to train on and is left out.

The tars are written with the standard library and say nothing of when or by whom: every
member has mtime 0, uid and gid 0, no owner names, mode 0644, so the same dataset gives the
same bytes.
"""
from __future__ import annotations

import io
import json
import re
import tarfile
from pathlib import Path

from ..io.files import write_json
from ..sources.ids import safe_part, short_hash
from .frames import ExportFrame
from .hf import label_names, metadata
from .shards import Sample, ShardLimits, file_size, plan, samples_by_split

INDEX = "shards.json"
# webdataset splits a member name at its first dot (key, then extension) and skips names that
# start and end with "__"; a key of these characters is neither.
KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")
BLOCK = tarfile.BLOCKSIZE
RECORD = tarfile.RECORDSIZE  # a tar ends with two zero blocks, padded to a whole record


def sample_key(crop_id: str) -> str:
    """The crop id, when it is a valid key; else its unsafe characters replaced and a hash of
    the id appended, so keys stay distinct (``a.b`` and ``a_b`` are two crops)."""
    if KEY.fullmatch(crop_id):
        return crop_id
    return f"{safe_part(crop_id, 80)}-{short_hash(crop_id)}"


def member(name: str, size: int) -> tarfile.TarInfo:
    """A tar header that records nothing of this machine or this moment."""
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = size, 0, 0o644
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def member_bytes(name: str, size: int) -> int:
    """What a member takes in the tar: its header (with a PAX header for a long name) and its
    data padded to whole blocks."""
    header = member(name, size).tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")
    return len(header) + -(-size // BLOCK) * BLOCK


def image_name(sample: Sample) -> str:
    return f"{sample_key(sample.crop_id)}{Path(sample.file or '').suffix.lower()}"


def text_files(sample: Sample, classes: dict[str, int]) -> list[tuple[str, bytes]]:
    """The sample's ``.json`` and ``.cls`` members, built from its manifest row alone."""
    key = sample_key(sample.crop_id)
    meta = metadata(sample.frame, sample.box)
    return [(f"{key}.json", json.dumps(meta).encode()),
            (f"{key}.cls", str(classes[meta["label"]]).encode())]


def sample_bytes(sample: Sample, root: Path, classes: dict[str, int]) -> int:
    return (member_bytes(image_name(sample), file_size(sample, root))
            + sum(member_bytes(name, len(data)) for name, data in text_files(sample, classes)))


def write_shard(path: Path, samples: list[Sample], root: Path, classes: dict[str, int]) -> None:
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
        for sample in samples:
            with (root / str(sample.file)).open("rb") as image:
                tar.addfile(member(image_name(sample), file_size(sample, root)), image)
            for name, data in text_files(sample, classes):
                tar.addfile(member(name, len(data)), io.BytesIO(data))


def write(frames: list[ExportFrame], root: Path, out: Path, limits: ShardLimits) -> None:
    names = label_names(frames)
    classes = {name: i for i, name in enumerate(names)}
    # the members of a shard and its end blocks must fit in whole records within the limit
    budget = limits.max_bytes // RECORD * RECORD - 2 * BLOCK
    index: dict[str, dict] = {}
    for split, samples in samples_by_split(frames).items():
        samples = [s for s in samples if s.file]
        if not samples:
            continue
        runs = plan([sample_bytes(s, root, classes) for s in samples], budget, limits.count)
        shards = [f"{split}-{i:06d}.tar" for i in range(len(runs))]
        for shard, run in zip(shards, runs):
            write_shard(out / shard, [samples[i] for i in run], root, classes)
        index[split] = {"shards": shards, "samples": len(samples)}
    write_json(out / INDEX, {"classes": names, "splits": index})
