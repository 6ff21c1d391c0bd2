"""What to sample: the plan (modes, ranges, strategy) and the frames it gives, as records.

Pure data with validation, no decoding: the selection (``selection.py``) and the decode
strategies (``opencv.py``, ``pyav.py``) all read the same ``SamplePlan``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np

Mode = Literal["every", "fps", "count", "scene"]
MODES: tuple[str, ...] = ("every", "fps", "count", "scene")
Strategy = Literal["auto", "sequential", "seek"]
STRATEGIES: tuple[str, ...] = ("auto", "sequential", "seek")


@dataclass(frozen=True)
class Range:
    """A time range to sample, ``start_s <= t < end_s`` (``end_s`` None: to the end)."""

    start_s: float = 0.0
    end_s: float | None = None
    label: str | None = None


@dataclass(frozen=True)
class SamplePlan:
    """Which frames to keep.

    mode:
      ``every``: the first frame at or after each time ``start + k * every_s`` of each range;
      ``fps``: the same with ``every_s = 1 / fps``;
      ``count``: ``count`` targets spread evenly over the sampled duration (shared between the
      ranges in proportion to their lengths), so at most ``count`` frames;
      ``scene``: the first frame of each range plus the first frame after each hard cut, i.e.
      where the mean absolute HSV difference between consecutive frames (0..255, the scale of
      PySceneDetect's ContentDetector) exceeds ``scene_threshold``, at least
      ``scene_min_gap_s`` after the previous sample (flashes do not give bursts).
    ranges: empty means the whole video; a frame belongs to the first range that contains it.
    min_sharpness: selected frames whose ``sharpness`` is below it are dropped (and counted),
      never replaced by a neighbour, so the set of candidate frames does not depend on it.
    seek_start: when the first range starts ``SEEK_MIN_S`` or more into the video, seek to
      ``SEEK_MARGIN_S`` before it instead of decoding everything before (see ``opencv.py``).
      Timestamps stay exact; frame indexes are then derived from them
      (``round(t_ms * fps / 1000)``), exact only for a constant frame rate. Off by default for
      that reason. (Sequential strategy only: the ``seek`` strategy skips what it does not need
      anyway, with exact indexes.)
    strategy: ``auto``, ``sequential`` or ``seek`` (see the package docstring); ``seek`` falls
      back to ``sequential`` where it cannot run (no PyAV, scene mode, a stream without
      timestamps or with display rotation). ``Sampler.strategy`` says which one ran.
    exact: when False (``seek`` only), a time target may take the nearest keyframe within half
      a step of its exact frame, so that sparse sampling decodes keyframes only.
    threads: decoder threads, 0 for the decoder's default (one per core).
    """

    mode: Mode = "every"
    every_s: float = 1.0
    fps: float | None = None
    count: int | None = None
    scene_threshold: float = 27.0
    scene_min_gap_s: float = 0.5
    ranges: tuple[Range, ...] = ()
    min_sharpness: float = 0.0
    seek_start: bool = False
    strategy: Strategy = "auto"
    exact: bool = True
    threads: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "ranges", tuple(self.ranges))
        problem = _plan_problem(self)
        if problem:
            raise ValueError(f"invalid sample plan: {problem}")

    @property
    def step_s(self) -> float:
        """Seconds between targets in the ``every`` and ``fps`` modes."""
        return 1.0 / self.fps if self.mode == "fps" and self.fps else self.every_s

    def expected_count(self, duration_s: float | None, frame_s: float = 0.0) -> int | None:
        """How many frames this plan keeps from a video of ``duration_s`` (before the sharpness
        filter), known before decoding: what ``plan`` counts and a progress bar's total. None
        in scene mode (it depends on the content) or when the duration is unknown. ``frame_s``:
        one frame's duration when known: a target after the last frame's start finds no frame
        (a 4.004 s clip at 29.97 fps has no frame at 4 s)."""
        if self.mode == "count":
            return self.count
        if duration_s is None or self.mode == "scene":
            return None
        last = max(0.0, duration_s - frame_s) + 1e-9 if frame_s else duration_s
        spans = [max(0.0, min(r.end_s if r.end_s is not None else last, last) - r.start_s)
                 for r in self.ranges] or [last]
        return sum(math.ceil(span / self.step_s) for span in spans)


@dataclass
class SampledFrame:
    """One kept frame. ``range_index`` indexes ``plan.ranges`` (-1 when sampling the whole
    video). ``image`` is BGR uint8, a fresh array the caller may keep."""

    t_ms: int
    frame_index: int
    image: np.ndarray
    sharpness: float
    range_index: int


def _plan_problem(plan: SamplePlan) -> str | None:
    """The first thing wrong with a plan, as a message, or None."""
    if plan.mode not in MODES:
        return f"mode must be one of {', '.join(MODES)}, not {plan.mode!r}"
    if not plan.every_s > 0:
        return "every_s must be > 0"
    if plan.mode == "fps" and not (plan.fps and plan.fps > 0):
        return "fps mode needs fps > 0"
    if plan.mode == "count" and not (plan.count and plan.count >= 1):
        return "count mode needs count >= 1"
    if plan.strategy not in STRATEGIES:
        return f"strategy must be one of {', '.join(STRATEGIES)}, not {plan.strategy!r}"
    if plan.threads < 0:
        return "threads must be >= 0"
    if plan.scene_threshold < 0 or plan.scene_min_gap_s < 0 or plan.min_sharpness < 0:
        return "scene_threshold, scene_min_gap_s and min_sharpness must be >= 0"
    for i, r in enumerate(plan.ranges):
        if r.start_s < 0 or (r.end_s is not None and r.end_s <= r.start_s):
            return f"ranges[{i}]: need 0 <= start_s < end_s, got {r.start_s}..{r.end_s}"
    return None
