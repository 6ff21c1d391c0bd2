"""Probe a video and pick the frames to keep from it: the sampling library of the sample stage.

Everything here decodes *sequentially*: ``grab()`` on every frame (demux + decode, cheap) and
``retrieve()`` (colour conversion into a numpy array) only for the frames that are kept, so the
cost is bounded by decoding and memory stays at one frame. Random access is avoided (bar the
opt-in, verified ``SamplePlan.seek_start``) because
``CAP_PROP_POS_FRAMES``/``CAP_PROP_POS_MSEC`` seeks are approximate on many files (they are
computed from the nominal frame rate), and ``CAP_PROP_FRAME_COUNT`` is only a container header
hint (raw ``.264`` streams report nonsense such as -192153584101141), so a loop never stops on
it: it stops when ``grab()`` fails.

Timestamps are the decoder's: on the FFmpeg backend ``CAP_PROP_POS_MSEC`` read right after a
``grab()`` is the presentation time of the grabbed frame (the frame's best-effort pts minus the
stream start), which is exact for variable frame rate files and B-frame streams. Streams without
timestamps (raw H.264) report 0 for every frame; those are detected frame by frame (a timestamp
that does not increase) and replaced by an estimate, see ``_Clock``.

Typical use (the sample stage)::

    info = probe(path)
    samples = iter_samples(path, SamplePlan(mode="every", every_s=1.0), info)
    for frame in samples:
        write(frame.t_ms, frame.image)
    report(samples.dropped_blurry, samples.estimated_timestamps)
"""
from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Literal

import cv2
import numpy as np

Mode = Literal["every", "fps", "count", "scene"]
MODES: tuple[str, ...] = ("every", "fps", "count", "scene")

DEFAULT_FPS = 25.0
"""Frame rate assumed for timestamp estimates when the container gives none."""
MAX_FPS = 1000.0
"""A reported rate above this is a stream time base (e.g. 90000), not a frame rate."""
SEEK_MIN_S = 5.0
"""``seek_start`` only seeks when the first range starts at least this far in: below it,
decoding from the start costs little and keeps frame indexes exact."""
SEEK_MARGIN_S = 2.0
"""Seek this much before the first range, so an imprecise seek still lands before it."""
SCENE_WIDTH = 64
"""Scene detection compares frames downscaled to this width: cuts are global changes, and a
64 px HSV copy keeps the comparison well under a millisecond a frame."""


class VideoError(Exception):
    """A video that cannot be opened or has no decodable frame (the message says which file)."""


@dataclass(frozen=True)
class VideoInfo:
    """What ``probe`` learned about a video.

    ``fps`` is 0 when unknown; ``frame_count`` is None when the container does not give a
    trustworthy one (raw streams without timestamps), and then ``duration_s`` is None too.
    Width and height are those of decoded frames (after OpenCV's automatic rotation).
    """

    width: int
    height: int
    fps: float
    frame_count: int | None
    duration_s: float | None


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
      ``SEEK_MARGIN_S`` before it instead of decoding everything before. Timestamps stay exact;
      frame indexes are then derived from them (``round(t_ms * fps / 1000)``), exact only for a
      constant frame rate. Off by default for that reason.
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

    def __post_init__(self) -> None:
        object.__setattr__(self, "ranges", tuple(self.ranges))
        problem = _plan_problem(self)
        if problem:
            raise ValueError(f"invalid sample plan: {problem}")

    @property
    def step_s(self) -> float:
        """Seconds between targets in the ``every`` and ``fps`` modes."""
        return 1.0 / self.fps if self.mode == "fps" and self.fps else self.every_s


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
    if plan.scene_threshold < 0 or plan.scene_min_gap_s < 0 or plan.min_sharpness < 0:
        return "scene_threshold, scene_min_gap_s and min_sharpness must be >= 0"
    for i, r in enumerate(plan.ranges):
        if r.start_s < 0 or (r.end_s is not None and r.end_s <= r.start_s):
            return f"ranges[{i}]: need 0 <= start_s < end_s, got {r.start_s}..{r.end_s}"
    return None


def sharpness(image: np.ndarray) -> float:
    """Variance of the Laplacian of the grayscale image: high for crisp edges, near zero for
    blurred or flat frames. It grows with resolution and texture, so thresholds are per dataset."""
    gray = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    _, std = cv2.meanStdDev(cv2.Laplacian(gray, cv2.CV_64F))  # 5x faster than ndarray.var()
    return float(std[0, 0]) ** 2


def _open(path: Path) -> cv2.VideoCapture:
    """Open a capture, with a clear VideoError for the usual reasons it fails."""
    if not path.exists():
        raise VideoError(f"{path}: no such file")
    if not path.is_file():
        raise VideoError(f"{path}: not a file")
    if path.stat().st_size == 0:
        raise VideoError(f"{path}: empty file (0 bytes)")
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        cap.release()
        raise VideoError(f"{path}: OpenCV cannot open it (not a video, or an unsupported "
                         "container or codec)")
    return cap


def _plausible_fps(value: float) -> float:
    return value if math.isfinite(value) and 0 < value <= MAX_FPS else 0.0


def probe(path: Path | str) -> VideoInfo:
    """Open a video, decode its first frame(s) and report its geometry, rate and length.

    Decodes two frames: the first proves the file is decodable and gives the true frame size;
    the second shows whether the stream has timestamps. Without them (raw streams) the
    container's frame count is garbage and is reported as None.
    """
    path = Path(path)
    cap = _open(path)
    try:
        fps = _plausible_fps(cap.get(cv2.CAP_PROP_FPS))
        reported_count = cap.get(cv2.CAP_PROP_FRAME_COUNT)
        ok, image = cap.read()
        if not ok or image is None:
            raise VideoError(f"{path}: no decodable video frame")
        first_ms = cap.get(cv2.CAP_PROP_POS_MSEC)
        has_timestamps = not cap.grab() or cap.get(cv2.CAP_PROP_POS_MSEC) > first_ms
    finally:
        cap.release()
    count = (int(reported_count)
             if has_timestamps and math.isfinite(reported_count) and 0 < reported_count < 2**31
             else None)
    return VideoInfo(width=int(image.shape[1]), height=int(image.shape[0]), fps=fps,
                     frame_count=count, duration_s=count / fps if count and fps else None)


class _Clock:
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
class _Span:
    """A range in integer milliseconds; ``index`` is its position in ``plan.ranges`` (-1: all)."""

    index: int
    start_ms: int
    end_ms: int | None

    def contains(self, t_ms: int) -> bool:
        return self.start_ms <= t_ms and (self.end_ms is None or t_ms < self.end_ms)


def _spans(ranges: tuple[Range, ...]) -> list[_Span]:
    if not ranges:
        return [_Span(-1, 0, None)]
    return [_Span(i, round(r.start_s * 1000), None if r.end_s is None else round(r.end_s * 1000))
            for i, r in enumerate(ranges)]


def _slot_of(t_ms: int, spans: list[_Span]) -> int | None:
    """Position in ``spans`` of the first span containing ``t_ms``, or None."""
    return next((slot for slot, span in enumerate(spans) if span.contains(t_ms)), None)


def _last_end_ms(spans: list[_Span]) -> int | None:
    """When every range is closed, the time after which nothing needs decoding."""
    ends = [span.end_ms for span in spans if span.end_ms is not None]
    return max(ends) if len(ends) == len(spans) else None


def _share(count: int, lengths: list[float]) -> list[int]:
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


class _Targets:
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


class _Scenes:
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


class Sampler(Iterator[SampledFrame]):
    """The iterator ``iter_samples`` returns: yields ``SampledFrame``s in time order and counts
    what happened, for the caller's report. Counters are final once iteration ends:

    - ``grabbed``: frames decoded (``grab()``), ``retrieved``: frames converted to images;
    - ``dropped_blurry``: selected frames dropped for ``min_sharpness``;
    - ``unreadable``: frames whose ``retrieve()`` failed (corrupt data), skipped;
    - ``estimated_timestamps``: frames whose time was estimated (no usable decoder timestamp);
    - ``seeked``: True when ``seek_start`` was used (frame indexes then derived from time).

    The capture is released when iteration ends, on ``close()``, or leaving a ``with`` block.
    """

    def __init__(self, path: Path | str, plan: SamplePlan, info: VideoInfo | None = None) -> None:
        self.path = Path(path)
        self.plan = plan
        self.info = info if info is not None else probe(self.path)
        self.grabbed = 0
        self.retrieved = 0
        self.dropped_blurry = 0
        self.unreadable = 0
        self.estimated_timestamps = 0
        self.seeked = False
        self._frame_ms = 1000.0 / (self.info.fps or DEFAULT_FPS)
        self._frames = self._run()

    def __iter__(self) -> Sampler:
        return self

    def __next__(self) -> SampledFrame:
        return next(self._frames)

    def close(self) -> None:
        self._frames.close()

    def __enter__(self) -> Sampler:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.close()

    def _selector(self, spans: list[_Span]) -> _Targets | _Scenes:
        plan = self.plan
        if plan.mode == "scene":
            return _Scenes(plan.scene_threshold, plan.scene_min_gap_s * 1000)
        if plan.mode != "count":
            return _Targets([(s.start_ms, plan.step_s * 1000, None) for s in spans])
        duration_ms = (self.info.duration_s * 1000 if self.info.duration_s
                       else self._measure_duration_ms(_last_end_ms(spans)))
        lengths = [max(0.0, min(duration_ms, s.end_ms or math.inf) - s.start_ms) for s in spans]
        shares = _share(plan.count or 0, lengths)
        return _Targets([(s.start_ms, length / n if n else 1.0, n)
                         for s, length, n in zip(spans, lengths, shares)])

    def _measure_duration_ms(self, until_ms: int | None) -> float:
        """Duration learned by a grab-only pass (no image conversion), stopped at ``until_ms``:
        for count mode on files whose container does not say how long they are."""
        cap = _open(self.path)
        clock = _Clock(self._frame_ms)
        last_ms = -self._frame_ms
        try:
            while cap.grab():
                self.grabbed += 1
                last_ms = clock.stamp(cap.get(cv2.CAP_PROP_POS_MSEC))
                if until_ms is not None and last_ms >= until_ms:
                    break
        finally:
            cap.release()
        return last_ms + self._frame_ms

    def _seek_target_ms(self, spans: list[_Span]) -> float | None:
        """Where to seek before decoding, or None to decode from the start. Needs a stream with
        timestamps (``frame_count`` known) and a frame rate to derive frame indexes."""
        first_ms = min(span.start_ms for span in spans)
        if (not self.plan.seek_start or first_ms < SEEK_MIN_S * 1000
                or self.info.frame_count is None or not self.info.fps):
            return None
        return first_ms - SEEK_MARGIN_S * 1000

    def _open_positioned(self, spans: list[_Span]) -> cv2.VideoCapture:
        """Open the capture, seeking when worth it.

        The seek is kept only when the first frame after it is verifiably before the first
        range (OpenCV seeks by nominal frame number, which can overshoot in a variable frame
        rate video, and silently does nothing on raw streams); otherwise decode from the start.
        That check frame is before every range, so it is never a sample and is not kept.
        """
        cap = _open(self.path)
        target_ms = self._seek_target_ms(spans)
        if target_ms is None:
            return cap
        first_ms = min(span.start_ms for span in spans)
        if cap.set(cv2.CAP_PROP_POS_MSEC, target_ms) and cap.grab():
            self.grabbed += 1
            if 0 < cap.get(cv2.CAP_PROP_POS_MSEC) < first_ms:
                self.seeked = True
                return cap
        cap.release()
        return _open(self.path)

    def _run(self) -> Iterator[SampledFrame]:
        plan = self.plan
        spans = _spans(plan.ranges)
        selector = self._selector(spans)
        stop_ms = _last_end_ms(spans)
        clock = _Clock(self._frame_ms)
        cap = self._open_positioned(spans)
        index = -1
        try:
            while cap.grab():
                self.grabbed += 1
                t_ms = clock.stamp(cap.get(cv2.CAP_PROP_POS_MSEC))
                self.estimated_timestamps = clock.estimated
                index = round(t_ms * self.info.fps / 1000) if self.seeked else index + 1
                if stop_ms is not None and t_ms >= stop_ms:
                    break
                slot = _slot_of(t_ms, spans)
                image = None if slot is None else self._select(cap, selector, t_ms, slot)
                if image is None:
                    continue
                score = sharpness(image)
                if score < plan.min_sharpness:
                    self.dropped_blurry += 1
                    continue
                yield SampledFrame(t_ms, index, image, score, spans[slot].index)
        finally:
            cap.release()

    def _select(self, cap: cv2.VideoCapture, selector: _Targets | _Scenes, t_ms: int,
                slot: int) -> np.ndarray | None:
        """The grabbed frame's image when the selector keeps it. Time-based selectors decide
        before ``retrieve()`` (the fast path); the scene selector needs every image."""
        if selector.needs_image:
            image = self._retrieve(cap)
            return image if image is not None and selector.keep(t_ms, slot, image) else None
        return self._retrieve(cap) if selector.keep(t_ms, slot, None) else None

    def _retrieve(self, cap: cv2.VideoCapture) -> np.ndarray | None:
        ok, image = cap.retrieve()
        if not ok or image is None:
            self.unreadable += 1
            return None
        self.retrieved += 1
        return image


def iter_samples(path: Path | str, plan: SamplePlan, info: VideoInfo | None = None) -> Sampler:
    """Decode ``path`` front to back and yield the frames ``plan`` selects.

    One pass, except in count mode when ``info.duration_s`` is unknown: a first grab-only pass
    then measures the duration.

    ``info`` (from ``probe``) saves a second probe when the caller already has it. Returns a
    ``Sampler``: iterate it for the frames, then read its counters (``dropped_blurry`` ...).
    Raises VideoError up front when the file cannot be opened or decoded at all; a file that
    breaks midway (truncated download) just ends early.
    """
    return Sampler(path, plan, info)
