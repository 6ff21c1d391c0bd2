"""Detect stage: run the configured detector on every sampled frame.

Output: ``detections/<sid>.jsonl``, one row per sampled frame (also frames with no detection), so
the crop stage can be re-tuned without detecting again and a user can audit what was found.
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

import cv2

from ..config import Config, Detect
from ..detections import Detections
from ..overlap import prefetch
from ..progress import bar
from ..sources import Video
from ..state import fingerprint, read_jsonl, write_jsonl

VERSION = "1"


@lru_cache(maxsize=4)
def _detector(section: Detect):
    """One detector per process and config: loading weights once, not per source."""
    from ..detectors import create_detector

    return create_detector(section.model, backend=section.backend, weights=section.weights,
                           input_size=section.input_size)


def detector_for(config: Config):
    return _detector(config.detect)


def stage_fingerprint(config: Config, upstream: str) -> str:
    return fingerprint(VERSION, config.detect.model_dump(), detector_for(config).version, upstream)


def run(video: Video, config: Config, root: Path, progress: bool = False) -> tuple[list[str], dict[str, Any]]:
    detector = detector_for(config)
    d = config.detect
    frames_dir = root / "frames" / video.sid
    frames = read_jsonl(frames_dir / "frames.jsonl")
    rows = []
    total = 0
    # JPEGs are read and decoded a few frames ahead on a helper thread, while the detector runs.
    images = prefetch(lambda row: cv2.imread(str(frames_dir / row["file"])), frames)
    for frame, image in bar(images, enabled=progress, desc=f"detect {video.sid[:30]}",
                            unit="frame", total=len(frames)):
        if image is None:
            raise OSError(f"cannot read frame {frames_dir / frame['file']}")
        found: Detections = detector.detect(image).filtered(d.min_score, d.min_size, d.max_per_frame)
        total += len(found)
        rows.append({**frame, **found.to_json()})
    out = root / "detections" / f"{video.sid}.jsonl"
    write_jsonl(out, rows)
    return [str(out.relative_to(root))], {"frames": len(rows), "detections": total,
                                          "detector": f"{detector.name}/{detector.backend}"}
