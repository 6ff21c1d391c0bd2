"""The one small interface behind which the two decode strategies sit (after PySceneDetect's
``VideoStream`` and its ``backends/``): a ``FrameSource`` yields the ``Candidate`` frames the
plan selects, in time order, and counts its work in the shared ``Counts``. ``Sampler`` picks
the source and applies what is common to both on top (the sharpness filter).

- ``opencv.OpenCVSource``: ``sequential``, every frame grabbed, the reference;
- ``pyav.PyAVSource``: ``seek``, keyframe-aware, decodes only what the kept frames need.
"""
from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple, Protocol

import numpy as np

from .plan import SamplePlan
from .probe import VideoInfo
from .selection import (Scenes, Span, Targets, last_end_ms, make_selector, measured_duration_ms,
                        spans)

DEFAULT_FPS = 25.0
"""Frame rate assumed for timestamp estimates when the container gives none."""


@dataclass(eq=False)
class Counts:
    """What decoding did, for the caller's report (``Sampler`` documents each counter)."""

    grabbed: int = 0
    decoded: int = 0
    retrieved: int = 0
    dropped_blurry: int = 0
    unreadable: int = 0
    estimated_timestamps: int = 0
    seeked: bool = False


class Candidate(NamedTuple):
    """A frame the plan selects, before the sharpness filter; ``slot`` indexes ``Job.spans``."""

    t_ms: int
    frame_index: int
    image: np.ndarray
    slot: int


@dataclass
class Job:
    """What every source needs: the file, the plan, the probe and the counters to update."""

    path: Path
    plan: SamplePlan
    info: VideoInfo
    counts: Counts
    spans: list[Span] = field(init=False)

    def __post_init__(self) -> None:
        self.spans = spans(self.plan.ranges)

    @property
    def frame_ms(self) -> float:
        """Nominal frame duration, for timestamps the decoder does not give."""
        return 1000.0 / (self.info.fps or DEFAULT_FPS)

    def selector(self, readings: Callable[[], Generator[float, None, None]]) -> Targets | Scenes:
        """The plan's frame selector. Count mode needs the duration: the container's, else
        measured over ``readings()`` (the frames' time readings, only asked for then)."""
        def duration_ms() -> float:
            if self.info.duration_s:
                return self.info.duration_s * 1000
            values = readings()
            try:
                return measured_duration_ms(values, last_end_ms(self.spans), self.frame_ms)
            finally:
                values.close()  # releases the decoder a grab-only pass opened

        return make_selector(self.plan, self.spans, duration_ms)


class FrameSource(Protocol):
    """A decode strategy. ``strategy`` names it for the report (it may change while frames
    are read: ``seek+sequential`` when the keyframe-aware pass has to hand over)."""

    strategy: str

    def frames(self) -> Generator[Candidate, None, None]:
        """The selected frames in time order; a generator, closed to release the decoder."""
        ...
