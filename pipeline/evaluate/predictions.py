"""What a run found, as evaluation reads it: the manifest's detection boxes and the frames each
source sampled.

A crop's ``box_*`` columns are the detector's box (its ``crop_*`` ones the padded region cut
around it): that is what is compared with labelled boxes. ``frame_index`` is the 0-based frame
of the decoded file, as labels number frames (after a reader's conversion). The frames a source
sampled come from ``detections/<sid>.jsonl`` (a row a sampled frame, also those where nothing
was found): a frame the run never looked at is not a miss.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from urllib.parse import unquote, urlparse

from ..io.files import read_jsonl
from .truth import Box


class RunError(ValueError):
    """The output folder holds no run to evaluate; the message says what to do."""


@dataclass(frozen=True)
class RunBox:
    """One crop's detection. ``track`` is unique within its source (an untracked crop is a track
    of its own); ``cluster`` its identity cluster (None without one)."""

    crop_id: str
    frame: int
    box: Box
    score: float
    track: str
    kept: bool
    cluster: str | None


@dataclass(frozen=True)
class SourceRun:
    """One source of the run: the names a truth file may give it, its sampled frames, its boxes."""

    sid: str
    names: frozenset[str]
    frames: frozenset[int]
    boxes: tuple[RunBox, ...]


def _names(row: dict) -> frozenset[str]:
    """The source id, and the file name and stem of its title and URL."""
    names = {row["source_id"]}
    for value in (row.get("title") or "", unquote(urlparse(row.get("source_url") or "").path)):
        if value:
            p = PurePosixPath(value)
            names |= {p.name, p.stem}
    return frozenset(n for n in names if n)


def _box(row: dict) -> RunBox:
    track = row.get("track_id")
    return RunBox(row["crop_id"], int(row["frame_index"]),
                  (float(row["box_x"]), float(row["box_y"]), float(row["box_w"]), float(row["box_h"])),
                  float(row["score"]),
                  row["crop_id"] if track in (None, -1) else f"track {track}",
                  row["status"] == "kept", row.get("identity_cluster") or None)


def sampled_frames(root: Path, sid: str) -> frozenset[int]:
    path = root / "detections" / f"{sid}.jsonl"
    if not path.is_file():
        raise RunError(f"{path} is missing: run the pipeline again to redo it")
    return frozenset(int(r["frame_index"]) for r in read_jsonl(path))


def read_run(root: Path) -> tuple[list[SourceRun], bool]:
    """The sources of the run in ``root`` and whether it has identity clusters."""
    manifest = root / "manifest.jsonl"
    if not manifest.is_file():
        raise RunError(f"no manifest in {root}/ yet: run the pipeline first")
    rows = [json.loads(line) for line in manifest.read_text(encoding="utf-8").splitlines() if line]
    by_source: dict[str, list[dict]] = {}
    for row in rows:
        by_source.setdefault(row["source_id"], []).append(row)
    info = {r.get("source_id"): r for r in _done_sources(root)}
    sources = []
    for sid in sorted(set(by_source) | set(info)):
        crops = by_source.get(sid, [])
        names = _names(crops[0] if crops else info[sid])
        sources.append(SourceRun(sid, names, sampled_frames(root, sid),
                                 tuple(_box(r) for r in crops)))
    return sources, any("identity_cluster" in r for r in rows)


def _done_sources(root: Path) -> list[dict]:
    """Sources that were sampled and detected but have no crop in the manifest (nothing found):
    their frames still count. Their names come from the download stage's record."""
    found = []
    for marker in sorted((root / "state" / "detect").glob("*.json")):
        if marker.name.endswith(".error.json"):
            continue
        sid = marker.stem
        download = root / "state" / "download" / f"{sid}.json"
        try:
            meta = json.loads(download.read_text(encoding="utf-8"))["result"]["info"]
        except (OSError, ValueError, KeyError, TypeError):
            meta = {}
        found.append({"source_id": sid, "title": meta.get("title"),
                      "source_url": meta.get("webpage_url")})
    return found
