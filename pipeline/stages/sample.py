"""Sample stage: pick frames from each downloaded video and write them as JPEGs.

Output: ``frames/<sid>/<t_ms:09d>.jpg`` plus ``frames/<sid>/frames.jsonl`` (one row per frame:
time, frame index, sharpness, segment). The folder is filled under a temporary name and renamed
into place, so a crash never leaves half a folder that looks finished.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2

from ..config import Config, Sample
from ..progress import bar
from ..sources import Video
from ..state import fingerprint, fresh_tmp_dir, replace_dir, write_jsonl
from ..video import Range, SamplePlan, iter_samples
from .download import VideoPart

VERSION = "1"


def stage_fingerprint(video: Video, config: Config, upstream: str) -> str:
    ranges = [(s.start, s.end) for s in video.segments]
    return fingerprint(VERSION, config.sample.model_dump(), ranges, upstream)


def plan_for(sample: Sample, ranges: tuple[Range, ...]) -> SamplePlan:
    """The sampler's plan from the config's ``sample`` section."""
    every = sample.every if sample.every is not None else 1.0
    return SamplePlan(mode=sample.mode, every_s=every, fps=sample.fps, count=sample.count,
                      scene_threshold=sample.scene.threshold if sample.scene else 27.0,
                      ranges=ranges, min_sharpness=sample.min_sharpness)


def _part_ranges(video: Video, part: VideoPart) -> tuple[tuple[Range, ...], list[int]]:
    """Ranges to sample in a part's own time, and which config segment each range is.

    A part holding one downloaded segment is sampled whole; a whole video is sampled inside
    the configured segments (all of it when there are none).
    """
    if part.segment >= 0:
        return (), [part.segment]
    ranges = tuple(Range(s.start, s.end, s.label) for s in video.segments)
    return ranges, list(range(len(ranges)))


def run(video: Video, config: Config, root: Path, parts: list[dict[str, Any]],
        progress: bool = False) -> tuple[list[str], dict[str, Any]]:
    final = root / "frames" / video.sid
    tmp = fresh_tmp_dir(final)
    rows: list[dict[str, Any]] = []
    dropped = 0
    params = [cv2.IMWRITE_JPEG_QUALITY, config.sample.quality]
    for raw in parts:
        part = VideoPart(**raw)
        path = Path(part.path) if Path(part.path).is_absolute() else root / part.path
        ranges, segment_of = _part_ranges(video, part)
        samples = iter_samples(str(path), plan_for(config.sample, ranges))
        for frame in bar(samples, enabled=progress, desc=f"sample {video.sid[:30]}", unit="frame"):
            t_ms = int(round(part.offset_s * 1000)) + frame.t_ms
            name = f"{t_ms:09d}.jpg"
            if not cv2.imwrite(str(tmp / name), frame.image, params):
                raise OSError(f"could not write {tmp / name}")
            segment = segment_of[frame.range_index] if segment_of and frame.range_index >= 0 else (
                part.segment if part.segment >= 0 else -1)
            rows.append({"t_ms": t_ms, "frame_index": frame.frame_index, "file": name,
                         "sharpness": round(float(frame.sharpness), 2), "segment": segment,
                         "width": int(frame.image.shape[1]), "height": int(frame.image.shape[0])})
        dropped += samples.dropped_blurry
    rows.sort(key=lambda r: r["t_ms"])
    write_jsonl(tmp / "frames.jsonl", rows)
    replace_dir(tmp, final)
    return [f"frames/{video.sid}/frames.jsonl"], {"frames": len(rows), "dropped_blurry": dropped}

