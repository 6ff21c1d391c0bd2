"""What earlier runs recorded, for ``plan``'s estimates: seconds a frame from the markers of
finished units, seconds a face from the identity markers, and JPEG bytes a pixel of the frames
on disk. A figure recorded on this machine with this config beats a fresh measurement."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2

from ..config.schema import Config
from ..core.layout import OutputLayout
from ..state.markers import State
from .measure import Estimate

EMBED_SECONDS = {"dlib": 0.0907}
"""Seconds to embed one face when no earlier run recorded any: scripts/bench.py's identity
section (dlib, 90.7 ms a face on a 2-core machine; docs/identity.md). sface: not measured."""


@dataclass(frozen=True)
class Embedding:
    """Seconds to embed one face (the identity stage), and where the number comes from."""

    seconds_per_face: float
    source: str


def recorded_estimate(state: State) -> Estimate | None:
    """Seconds per frame from the markers of units earlier runs finished, when there are any."""
    seconds, frames, detections = 0.0, 0, 0
    for marker_path in state.layout.stage_dir("sample").glob("*.json"):
        sid = marker_path.stem
        if sid.endswith(".error"):
            continue
        sampled, detected, cropped = (state.read(stage, sid) for stage in ("sample", "detect", "crop"))
        if sampled is None or detected is None or cropped is None:
            continue
        n = sampled.result.get("frames", 0)
        if n <= 0:
            continue
        seconds += sampled.seconds + detected.seconds + cropped.seconds
        frames += n
        detections += detected.result.get("detections", 0)
    if frames == 0 or seconds <= 0:
        return None
    return Estimate(seconds / frames, f"timings of {frames} frames processed by earlier runs",
                    detections / frames, _frames_bpp(state.root))


def embedding_estimate(config: Config, state: State) -> Embedding | None:
    """Seconds a face for the identity stage: from what earlier runs recorded, else the
    model's benchmark figure (``EMBED_SECONDS``); None without identity or a figure."""
    if config.identity is None:
        return None
    markers = [state.read("identity", p.stem) for p in state.layout.stage_dir("identity").glob("*.json")
               if not p.stem.endswith(".error")]
    faces = sum(m.result.get("embedded", 0) for m in markers if m is not None)
    seconds = sum(m.seconds for m in markers if m is not None)
    if faces > 0 and seconds > 0:
        return Embedding(seconds / faces, f"timings of {faces} faces embedded by earlier runs")
    if config.identity.model in EMBED_SECONDS:
        return Embedding(EMBED_SECONDS[config.identity.model],
                         f"{config.identity.model}'s benchmark figure")
    return None


def _frames_bpp(root: Path, limit: int = 50) -> float | None:
    """JPEG bytes per pixel of sampled frames already on disk."""
    size = pixels = 0
    for jpg in sorted(OutputLayout(root).frames_root.glob("*/*.jpg"))[:limit]:
        image = cv2.imread(str(jpg), cv2.IMREAD_REDUCED_GRAYSCALE_8)
        if image is None:
            continue
        size += jpg.stat().st_size
        pixels += image.shape[0] * image.shape[1] * 64
    return size / pixels if pixels else None


