"""What earlier runs recorded, for ``plan``'s estimates: seconds a frame and a face from the
markers of the stages whose work is measured in frames or faces (``Stage.work``), the faces a
frame gave, and JPEG bytes a pixel of the frames on disk. A figure recorded on this machine with
this config beats a fresh measurement.

No stage is named: the stages say their unit, and their results what they did of it
(``Result.amounts``), so a new stage measured in frames adds its recorded seconds to the
per-frame figure."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import cv2

from ..config.schema import Config
from ..core.layout import OutputLayout
from ..stages import FACES, FRAMES, Rate, Result, Stage, measured_in
from ..state.markers import Marker, State
from .measure import Estimate


@dataclass
class Recorded:
    """What the stages of one unit recorded over the sources that went through all of them."""

    seconds: float = 0.0
    units: int = 0
    made: dict[str, int] = field(default_factory=dict)  # the other units their results count


def read_result(state: State, stage: Stage, sid: str) -> tuple[Marker, Result] | None:
    """A source's marker of ``stage`` and the result it recorded, when both can be read."""
    marker = state.read(stage.name, sid)
    result = None if marker is None else stage.read(marker.result)
    return None if marker is None or result is None else (marker, result)


def recorded(state: State, stages: tuple[Stage, ...], unit: str) -> Recorded:
    """The seconds ``stages`` took over the sources with a marker of each, and the units of
    ``unit`` they did (the first of their results that counts it says); a source that did none
    is left out, its time being the source's own (``plan`` counts that per source)."""
    total = Recorded()
    if not stages:
        return total
    for marker_path in state.layout.stage_dir(stages[0].name).glob("*.json"):
        sid = marker_path.stem
        if sid.endswith(".error"):
            continue
        found = [read_result(state, stage, sid) for stage in stages]
        read = [f for f in found if f is not None]
        if len(read) < len(stages):
            continue
        amounts = [result.amounts() for _, result in read]
        units = next((a[unit] for a in amounts if unit in a), 0)
        if units <= 0:
            continue
        total.seconds += sum(marker.seconds for marker, _ in read)
        total.units += units
        for made in amounts:
            for other, n in made.items():
                if other != unit:
                    total.made[other] = total.made.get(other, 0) + n
    return total


def recorded_estimate(config: Config, state: State) -> Estimate | None:
    """Seconds per frame from the markers of units earlier runs finished, when there are any."""
    frames = recorded(state, measured_in(config, FRAMES), FRAMES)
    if frames.units == 0 or frames.seconds <= 0:
        return None
    return Estimate(frames.seconds / frames.units,
                    f"timings of {frames.units} frames processed by earlier runs",
                    frames.made.get(FACES, 0) / frames.units, _frames_bpp(state.root))


def face_rate(config: Config, state: State) -> Rate | None:
    """Seconds a face for the stages measured in faces: from what earlier runs recorded, else
    the sum of their benchmark figures (``Stage.benchmark``); None without such a stage (no
    ``identity``) or a figure."""
    stages = measured_in(config, FACES)
    if not stages:
        return None
    faces = recorded(state, stages, FACES)
    if faces.units > 0 and faces.seconds > 0:
        return Rate(faces.seconds / faces.units, f"timings of {faces.units} faces embedded by earlier runs")
    figures = [stage.benchmark(config) for stage in stages]
    known = [f for f in figures if f is not None]
    if len(known) < len(figures):
        return None
    return Rate(sum(f.seconds for f in known), "; ".join(f.source for f in known))


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
