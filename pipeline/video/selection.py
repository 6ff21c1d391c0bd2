"""Which frames to keep, decided from their times (and images, for scenes): pure functions and
small state machines, no decoding. Both decode strategies feed them the same frame times, so
they keep the same frames.

- ``Clock`` turns decoder readings into strictly increasing integer milliseconds;
- ``spans`` / ``slot_of`` place a time in the plan's ranges;
- ``Targets`` keeps the first frame at or after each target time (every / fps / count modes);
  ``Scenes`` the first frame after each hard cut (scene mode); ``make_selector`` builds the
  plan's one;
- ``sharpness`` scores a kept frame for the ``min_sharpness`` filter.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import cv2
import numpy as np

from .plan import Range, SamplePlan

SCENE_WIDTH = 64
"""Scene detection compares frames downscaled to this width: cuts are global changes, and a
64 px HSV copy keeps the comparison well under a millisecond a frame."""


def sharpness(image: np.ndarray) -> float:
    """Variance of the Laplacian of the grayscale image: high for crisp edges, near zero for
    blurred or flat frames. It grows with resolution and texture, so thresholds are per dataset."""
    gray = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    # Float32 holds the integer Laplacian of uint8 exactly, meanStdDev sums in double: the same
    # value as CV_64F, faster (and 5x faster than ndarray.var()).
    _, std = cv2.meanStdDev(cv2.Laplacian(gray, cv2.CV_32F))
    return float(std[0, 0]) ** 2


class Clock:
    """Turns the backend's per-frame ``CAP_PROP_POS_MSEC`` into strictly increasing integer ms.

    A reading is trusted when it is finite and later than the previous frame's time; otherwise
    (raw streams report 0 for every frame, some broken files jump back) the frame is placed one
    nominal frame duration after the previous one. This repairs per frame, so one bad reading
    does not discard the good timestamps around it, and it is monotonic by construction, which
    the frame file names (``<t_ms>.jpg``) rely on.
    """

    def __init__(self, frame_ms: float) -> None:
        self.frame_ms = frame_ms
        self.estimated = 0
        self._last: float | None = None
        self._last_ms = -1

    def stamp(self, reading: float) -> int:
        valid = math.isfinite(reading) and reading >= 0
        if self._last is None:
            t = reading if valid else 0.0
        elif valid and reading > self._last:
            t = reading
        else:
            t = self._last + self.frame_ms
        if t != reading:
            self.estimated += 1
        self._last = t
        self._last_ms = max(round(t), self._last_ms + 1)
        return self._last_ms


@dataclass(frozen=True)
class Span:
    """A range in integer milliseconds; ``index`` is its position in ``plan.ranges`` (-1: all)."""

    index: int
    start_ms: int
    end_ms: int | None

    def contains(self, t_ms: int) -> bool:
        return self.start_ms <= t_ms and (self.end_ms is None or t_ms < self.end_ms)


def spans(ranges: tuple[Range, ...]) -> list[Span]:
    """The plan's ranges in integer ms; one open span covering everything when there are none."""
    if not ranges:
        return [Span(-1, 0, None)]
    return [Span(i, round(r.start_s * 1000), None if r.end_s is None else round(r.end_s * 1000))
            for i, r in enumerate(ranges)]


def slot_of(t_ms: int, spans: list[Span]) -> int | None:
    """Position in ``spans`` of the first span containing ``t_ms``, or None."""
    return next((slot for slot, span in enumerate(spans) if span.contains(t_ms)), None)


def last_end_ms(spans: list[Span]) -> int | None:
    """When every range is closed, the time after which nothing needs decoding."""
    ends = [span.end_ms for span in spans if span.end_ms is not None]
    return max(ends) if len(ends) == len(spans) else None


def share(count: int, lengths: list[float]) -> list[int]:
    """Split ``count`` into integers proportional to ``lengths`` (largest remainder method),
    so the shares always add up to ``count`` exactly."""
    total = sum(lengths)
    if total <= 0:
        return [0] * len(lengths)
    quotas = [count * length / total for length in lengths]
    shares = [math.floor(q) for q in quotas]
    by_remainder = sorted(range(len(quotas)), key=lambda i: shares[i] - quotas[i])
    for i in by_remainder[:count - sum(shares)]:
        shares[i] += 1
    return shares


def measured_duration_ms(readings: Iterable[float], until_ms: int | None,
                         frame_ms: float) -> float:
    """A video's duration learned from its frames' time readings (stopped at ``until_ms``):
    for count mode on files whose container does not say how long they are."""
    clock = Clock(frame_ms)
    last_ms: float = -frame_ms
    for reading in readings:
        last_ms = clock.stamp(reading)
        if until_ms is not None and last_ms >= until_ms:
            break
    return last_ms + frame_ms


class Targets:
    """Keeps the first frame at or after each target time ``start + k * step`` of a span
    (at most ``limit`` targets). Several targets that fall before the same frame (a gap in a
    variable frame rate video, or a step shorter than a frame) give that frame once."""

    needs_image = False

    def __init__(self, grid: list[tuple[float, float, int | None]]) -> None:
        self._grid = grid  # per slot: start ms, step ms, target limit
        self._next = [0] * len(grid)

    def _target(self, slot: int, k: int) -> int:
        start, step, _ = self._grid[slot]
        return round(start + k * step)

    def step_ms(self, slot: int) -> float:
        return self._grid[slot][1]

    def keep(self, t_ms: int, slot: int, image: np.ndarray | None) -> bool:
        start, step, limit = self._grid[slot]
        k = self._next[slot]
        if (limit is not None and k >= limit) or t_ms < self._target(slot, k):
            return False
        k = max(k + 1, math.floor((t_ms - start) / step))
        while self._target(slot, k) <= t_ms:
            k += 1
        self._next[slot] = k
        return True


def _small_hsv(image: np.ndarray) -> np.ndarray:
    height, width = image.shape[:2]
    size = (SCENE_WIDTH, max(1, round(SCENE_WIDTH * height / width)))
    return cv2.cvtColor(cv2.resize(image, size, interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2HSV)


def hsv_delta(a: np.ndarray, b: np.ndarray) -> float:
    """Mean absolute difference of two HSV images over all pixels and channels, i.e. the mean
    of the hue, saturation and value deltas (PySceneDetect's content score without edges)."""
    return float(cv2.absdiff(a, b).mean(axis=(0, 1)).mean())


class Scenes:
    """Keeps the first frame of each span and the first frame after each hard cut."""

    needs_image = True

    def __init__(self, threshold: float, min_gap_ms: float) -> None:
        self._threshold = threshold
        self._min_gap_ms = min_gap_ms
        self._previous: np.ndarray | None = None
        self._started: set[int] = set()
        self._last_kept_ms = -math.inf

    def keep(self, t_ms: int, slot: int, image: np.ndarray | None) -> bool:
        assert image is not None
        small = _small_hsv(image)
        previous, self._previous = self._previous, small
        if slot in self._started:
            if previous is None or hsv_delta(previous, small) <= self._threshold:
                return False
            if t_ms - self._last_kept_ms < self._min_gap_ms:
                return False
        self._started.add(slot)
        self._last_kept_ms = t_ms
        return True


def make_selector(plan: SamplePlan, spans: list[Span],
                  duration_ms: Callable[[], float]) -> Targets | Scenes:
    """The plan's frame selector. ``duration_ms`` is called only in count mode, which spreads
    its targets over the sampled duration."""
    if plan.mode == "scene":
        return Scenes(plan.scene_threshold, plan.scene_min_gap_s * 1000)
    if plan.mode != "count":
        return Targets([(s.start_ms, plan.step_s * 1000, None) for s in spans])
    total_ms = duration_ms()
    lengths = [max(0.0, min(total_ms, s.end_ms or math.inf) - s.start_ms) for s in spans]
    shares = share(plan.count or 0, lengths)
    return Targets([(s.start_ms, length / n if n else 1.0, n)
                    for s, length, n in zip(spans, lengths, shares)])
