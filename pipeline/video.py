"""Probe a video and pick the frames to keep from it: the sampling library of the sample stage.

The *sequential* strategy: ``grab()`` on every frame (demux + decode, cheap) and
``retrieve()`` (colour conversion into a numpy array) only for the frames that are kept, so the
cost is bounded by decoding and memory stays at one frame. OpenCV's random access is avoided
(bar the opt-in, verified ``SamplePlan.seek_start``) because
``CAP_PROP_POS_FRAMES``/``CAP_PROP_POS_MSEC`` seeks are approximate on many files (they are
computed from the nominal frame rate), and ``CAP_PROP_FRAME_COUNT`` is only a container header
hint (raw ``.264`` streams report nonsense such as -192153584101141), so a loop never stops on
it: it stops when ``grab()`` fails.

Timestamps are the decoder's: on the FFmpeg backend ``CAP_PROP_POS_MSEC`` read right after a
``grab()`` is the presentation time of the grabbed frame (the frame's best-effort pts minus the
stream start), which is exact for variable frame rate files and B-frame streams. Streams without
timestamps (raw H.264) report 0 for every frame; those are detected frame by frame (a timestamp
that does not increase) and replaced by an estimate, see ``_Clock``.

Two strategies give the same frames with the same timestamps and indexes (tests check it):

- ``sequential`` (OpenCV): ``grab()`` every frame as above. Needed for ``scene`` mode (every
  image is compared) and for streams without timestamps.
- ``seek`` (keyframe-aware, needs the optional PyAV): a demux pass that decodes nothing lists
  every packet (presentation time, keyframe flag), the plan is applied to that list, and then
  only what the kept frames need is decoded: from the keyframe before each kept frame up to it,
  with non-reference frames skipped (``skip_frame``: no other frame depends on them), and the
  rest of the video is skipped, with a real seek across long gaps. Dense sampling (1 s in a 2 s
  GOP) then decodes about half of the frames, sparse sampling (5 s, 30 s) little more than the
  keyframes. Runs start at keyframes, so they are spread over one decoder thread per core.
  Timestamps are computed with OpenCV's formula from the packets' own, frame indexes are ranks
  in presentation order: both equal what the sequential strategy reports.

``strategy="auto"`` takes ``seek`` when PyAV can index the file and at most half of the frames
are kept, else ``sequential``. With ``exact=False`` a target may take the nearest keyframe
within half a step instead of the exact frame (its true timestamp is reported), so sparse
sampling decodes keyframes only.

Typical use (the sample stage)::

    info = probe(path)
    samples = iter_samples(path, SamplePlan(mode="every", every_s=1.0), info)
    for frame in samples:
        write(frame.t_ms, frame.image)
    report(samples.dropped_blurry, samples.estimated_timestamps)
"""
from __future__ import annotations

import bisect
import math
import os
import queue
import threading
from array import array
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Literal

import cv2
import numpy as np

Mode = Literal["every", "fps", "count", "scene"]
MODES: tuple[str, ...] = ("every", "fps", "count", "scene")
Strategy = Literal["auto", "sequential", "seek"]
STRATEGIES: tuple[str, ...] = ("auto", "sequential", "seek")

DEFAULT_FPS = 25.0
"""Frame rate assumed for timestamp estimates when the container gives none."""
MAX_FPS = 1000.0
"""A reported rate above this is a stream time base (e.g. 90000), not a frame rate."""
SEEK_MIN_S = 5.0
"""``seek_start`` only seeks when the first range starts at least this far in: below it,
decoding from the start costs little and keeps frame indexes exact."""
SEEK_MARGIN_S = 2.0
"""Seek this much before the first range, so an imprecise seek still lands before it."""
DENSE_FRACTION = 0.5
"""``auto`` decodes sequentially when more than this fraction of the frames is kept."""
SEEK_GAP_PACKETS = 250
"""The keyframe-aware strategy seeks over a gap of more than this many packets, and demuxes
(reads without decoding) through shorter ones."""
PARALLEL_RUNS = True
"""Decode independent runs on one single-threaded decoder per core (see ``_run_seek``)."""
QUEUE_FRAMES = 3
"""Decoded frames each parallel decoder may hold ready for the consumer."""
NO_TS = -(2**63)
"""A missing timestamp in ``PacketIndex.dts``."""
NONREF_CODECS = frozenset({"h264", "hevc"})
"""Decoders that check ``skip_frame`` in every slice header, so non-reference frames can be
skipped packet by packet (others read it once when opened, so it is left alone for them)."""
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
    rotation: int = 0
    """Degrees of the container's display rotation (OpenCV turns decoded frames by it)."""


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
      constant frame rate. Off by default for that reason. (Sequential strategy only: the
      ``seek`` strategy skips what it does not need anyway, with exact indexes.)
    strategy: ``auto``, ``sequential`` or ``seek`` (see the module docstring); ``seek`` falls
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


def sharpness(image: np.ndarray) -> float:
    """Variance of the Laplacian of the grayscale image: high for crisp edges, near zero for
    blurred or flat frames. It grows with resolution and texture, so thresholds are per dataset."""
    gray = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    # Float32 holds the integer Laplacian of uint8 exactly, meanStdDev sums in double: the same
    # value as CV_64F, faster (and 5x faster than ndarray.var()).
    _, std = cv2.meanStdDev(cv2.Laplacian(gray, cv2.CV_32F))
    return float(std[0, 0]) ** 2


def _open(path: Path, threads: int = 0) -> cv2.VideoCapture:
    """Open a capture, with a clear VideoError for the usual reasons it fails (``threads``:
    decoder threads, 0 for OpenCV's default)."""
    if not path.exists():
        raise VideoError(f"{path}: no such file")
    if not path.is_file():
        raise VideoError(f"{path}: not a file")
    if path.stat().st_size == 0:
        raise VideoError(f"{path}: empty file (0 bytes)")
    if not _utf8(str(path)):  # OpenCV crashes (SIGSEGV) on such a name; refuse it instead
        raise VideoError(f"{path!r}: the file name is not valid UTF-8, which OpenCV cannot open")
    if threads > 0:
        cap = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG, [cv2.CAP_PROP_N_THREADS, threads])
    else:
        cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        cap.release()
        raise VideoError(f"{path}: OpenCV cannot open it (not a video, or an unsupported "
                         "container or codec)")
    return cap


def _utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


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
        rotation = cap.get(cv2.CAP_PROP_ORIENTATION_META)
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
                     frame_count=count, duration_s=count / fps if count and fps else None,
                     rotation=int(rotation) % 360 if math.isfinite(rotation) else 0)


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


# --------------------------------------------------------------------- packet index (PyAV)

def pyav_available() -> bool:
    """Whether the optional PyAV (``pip install av``, extra ``fast``) can be imported."""
    try:
        import av  # noqa: F401
    except ImportError:
        return False
    return True


@dataclass(frozen=True)
class PacketIndex:
    """Every packet of the video stream in decode order, learned by demuxing without decoding
    (about 1/200 of the cost of decoding). Parallel numpy arrays, one entry per non-empty
    packet (26 bytes a packet: 3 MB for an hour at 30 fps, and no Python object per packet).

    ``dts`` is ``NO_TS`` where the container gives none. ``shown`` is False for packets the
    container marks as discard (decoded, never displayed: edit lists). ``readings`` are the
    times OpenCV would report for the frames, in ms (``(pts - start) * time_base * 1000``, its
    formula, so both strategies stamp alike).
    """

    pts: np.ndarray  # int64
    dts: np.ndarray  # int64
    key: np.ndarray  # bool
    shown: np.ndarray  # bool
    readings: np.ndarray  # float64
    codec: str
    width: int
    height: int

    def __post_init__(self) -> None:
        for name, dtype in (("pts", np.int64), ("dts", np.int64), ("key", np.bool_),
                            ("shown", np.bool_), ("readings", np.float64)):
            object.__setattr__(self, name, np.asarray(getattr(self, name), dtype))

    def __len__(self) -> int:
        return len(self.pts)

    @property
    def keyframe_interval_s(self) -> float | None:
        """Median time between consecutive keyframes (None with fewer than two)."""
        gaps = np.diff(np.sort(self.readings[self.key & self.shown]))
        return float(np.sort(gaps)[len(gaps) // 2]) / 1000 if len(gaps) else None

    def presentation_order(self) -> np.ndarray:
        """Packet numbers of the shown frames, sorted by presentation time."""
        shown = np.flatnonzero(self.shown)
        return shown[np.argsort(self.pts[shown], kind="stable")]


def index_packets(path: Path | str) -> PacketIndex | None:
    """Demux the first video stream (no decoding) and list its packets, or None when PyAV is
    missing or the stream is not fit for keyframe-aware decoding: a packet without a
    timestamp (raw streams), repeated timestamps, or anything PyAV cannot read."""
    try:
        import av
    except ImportError:
        return None
    pts, dts, key, shown = array("q"), array("q"), bytearray(), bytearray()
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                return None
            stream = container.streams.video[0]
            start, base = stream.start_time, stream.time_base
            if start is None or base is None:
                return None
            for packet in container.demux(stream):
                if not packet.size:
                    continue  # the end-of-stream marker
                if packet.pts is None:
                    return None
                pts.append(packet.pts)
                dts.append(NO_TS if packet.dts is None else packet.dts)
                key.append(bool(packet.is_keyframe))
                shown.append(not packet.is_discard)
            codec = stream.codec_context.name
            width, height = stream.codec_context.width, stream.codec_context.height
    except Exception:  # noqa: BLE001 - any file PyAV cannot read is sampled by OpenCV
        return None
    times = np.frombuffer(pts, np.int64) if pts else np.zeros(0, np.int64)
    if not len(times) or np.any(np.diff(np.sort(times)) == 0):
        return None
    scale = base.numerator / base.denominator  # OpenCV's r2d(time_base)
    readings = (times - start) * scale * 1000  # elementwise the same double operations
    return PacketIndex(times.copy(), np.frombuffer(dts, np.int64).copy(),
                       np.frombuffer(key, np.bool_).copy(), np.frombuffer(shown, np.bool_).copy(),
                       readings, codec, width, height)


def _floats(values: np.ndarray, chunk: int = 4096) -> Iterator[float]:
    """Python floats of an array, converted a chunk at a time (never a list of all of them)."""
    for at in range(0, len(values), chunk):
        yield from values[at:at + chunk].tolist()


@dataclass(frozen=True)
class _Pick:
    """A frame to keep: its packet (decode order), time, index and range slot."""

    packet: int
    t_ms: int
    frame_index: int
    slot: int


def _runs(index: PacketIndex, packets: Iterable[int],
          merge_adjacent: bool = True) -> list[tuple[int, int]]:
    """Packet ranges ``(first, last)`` (decode order, inclusive) to decode so that every packet
    in ``packets`` decodes exactly: each from the keyframe at or before it. A leading frame of an
    open GOP (shown before its keyframe) may refer to the previous GOP, so it starts there.
    Overlapping ranges merge; adjacent ones too unless ``merge_adjacent`` is False (separate
    runs can go to separate decoders)."""
    keys = np.flatnonzero(index.key)

    def gop_start(i: int) -> int:
        at = int(np.searchsorted(keys, i, side="right")) - 1
        return int(keys[at]) if at >= 0 else 0

    spans = []
    for i in sorted(set(packets)):
        first = gop_start(i)
        if index.pts[i] < index.pts[first] and first > 0:
            first = gop_start(first - 1)
        spans.append((first, i))
    runs: list[tuple[int, int]] = []
    for first, last in sorted(spans):
        if runs and first <= runs[-1][1] + (1 if merge_adjacent else 0):
            runs[-1] = (runs[-1][0], max(runs[-1][1], last))
        else:
            runs.append((first, last))
    return runs


class _IndexMismatch(Exception):
    """The decode pass did not see the packets the index pass saw (a file that changed, or a
    demuxer that is not deterministic): the sampler goes on sequentially."""


# --------------------------------------------------------------------- the sampler

class Sampler(Iterator[SampledFrame]):
    """The iterator ``iter_samples`` returns: yields ``SampledFrame``s in time order and counts
    what happened, for the caller's report. Counters are final once iteration ends:

    - ``grabbed``: frames decoded (``grab()``; for ``seek``: packets given to the decoder),
      ``retrieved``: frames converted to images;
    - ``dropped_blurry``: selected frames dropped for ``min_sharpness``;
    - ``unreadable``: frames whose ``retrieve()`` failed (corrupt data), skipped;
    - ``estimated_timestamps``: frames whose time was estimated (no usable decoder timestamp);
    - ``seeked``: True when ``seek_start`` was used (frame indexes then derived from time);
    - ``strategy``: ``sequential`` or ``seek``, the one that runs (fixed on construction);
      ``keyframe_interval_s``: median keyframe interval when the packets were indexed.

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
        self.keyframe_interval_s: float | None = None
        self._frame_ms = 1000.0 / (self.info.fps or DEFAULT_FPS)
        self._spans = _spans(plan.ranges)
        picks = self._keyframe_plan()
        self.strategy = "sequential" if picks is None else "seek"
        self._frames = self._run() if picks is None else self._run_seek(*picks)

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

    def _selector(self, spans: list[_Span],
                  readings: Iterable[float] | None = None) -> _Targets | _Scenes:
        """The frame selector of the plan. Count mode needs the duration: the container's, or
        measured over ``readings`` (the index's) or by a grab-only pass."""
        plan = self.plan
        if plan.mode == "scene":
            return _Scenes(plan.scene_threshold, plan.scene_min_gap_s * 1000)
        if plan.mode != "count":
            return _Targets([(s.start_ms, plan.step_s * 1000, None) for s in spans])
        if self.info.duration_s:
            duration_ms = self.info.duration_s * 1000
        else:
            duration_ms = self._measure_duration_ms(_last_end_ms(spans), readings)
        lengths = [max(0.0, min(duration_ms, s.end_ms or math.inf) - s.start_ms) for s in spans]
        shares = _share(plan.count or 0, lengths)
        return _Targets([(s.start_ms, length / n if n else 1.0, n)
                         for s, length, n in zip(spans, lengths, shares)])

    def _measure_duration_ms(self, until_ms: int | None,
                             readings: Iterable[float] | None = None) -> float:
        """Duration learned from the frames' times, stopped at ``until_ms``: for count mode on
        files whose container does not say how long they are. Without ``readings``, a
        grab-only pass (no image conversion) gives them."""
        cap = None
        if readings is None:
            cap = _open(self.path, self.plan.threads)

            def grabbed() -> Iterator[float]:
                while cap.grab():
                    self.grabbed += 1
                    yield cap.get(cv2.CAP_PROP_POS_MSEC)

            readings = grabbed()
        clock = _Clock(self._frame_ms)
        last_ms = -self._frame_ms
        try:
            for reading in readings:
                last_ms = clock.stamp(reading)
                if until_ms is not None and last_ms >= until_ms:
                    break
        finally:
            if cap is not None:
                cap.release()
        return last_ms + self._frame_ms

    # ----------------------------------------------------------------- keyframe-aware plan

    def _keyframe_plan(self) -> tuple[PacketIndex, list[_Pick]] | None:
        """The packet index and the frames to keep when the ``seek`` strategy runs, else None."""
        plan = self.plan
        if (plan.strategy == "sequential" or plan.mode == "scene" or plan.seek_start
                or self.info.rotation):
            return None
        index = index_packets(self.path)
        if index is None or (index.width, index.height) != (self.info.width, self.info.height):
            return None
        self.keyframe_interval_s = index.keyframe_interval_s
        picks = self._picks(index)
        if plan.strategy == "auto" and len(picks) > DENSE_FRACTION * int(index.shown.sum()):
            return None
        return index, picks

    def _picks(self, index: PacketIndex) -> list[_Pick]:
        """Apply the plan to the index: the very frames a sequential pass keeps, with the same
        clock, selector and frame counting."""
        spans = _spans(self.plan.ranges)
        order = index.presentation_order()
        readings = index.readings[order]
        selector = self._selector(spans, _floats(readings))
        assert isinstance(selector, _Targets)
        stop_ms = _last_end_ms(spans)
        clock = _Clock(self._frame_ms)
        picks: list[_Pick] = []
        stamps = np.zeros(len(order), np.int64)
        stamped = 0  # frames before the end of the ranges
        for rank, reading in enumerate(_floats(readings)):
            t_ms = clock.stamp(reading)
            if stop_ms is not None and t_ms >= stop_ms:
                break
            stamps[rank] = t_ms
            stamped = rank + 1
            slot = _slot_of(t_ms, spans)
            if slot is not None and selector.keep(t_ms, slot, None):
                picks.append(_Pick(int(order[rank]), t_ms, rank, slot))
        self.estimated_timestamps = clock.estimated
        if not self.plan.exact:
            picks = self._near_keyframes(index, order[:stamped], stamps[:stamped], picks,
                                         selector, spans)
        return picks

    def _near_keyframes(self, index: PacketIndex, order: np.ndarray, stamps: np.ndarray,
                        picks: list[_Pick], selector: _Targets, spans: list[_Span]) -> list[_Pick]:
        """``exact=False``: move each pick to the nearest keyframe within half a step (in the
        same range, keeping the picks in strictly increasing time)."""
        keys = np.flatnonzero(index.key[order]).tolist()  # ranks of the keyframes
        key_times = stamps[keys].tolist()
        out: list[_Pick] = []
        for n, pick in enumerate(picks):
            tolerance = selector.step_ms(pick.slot) / 2
            low = out[-1].t_ms if out else -math.inf
            high = picks[n + 1].t_ms if n + 1 < len(picks) else math.inf
            best: _Pick | None = None
            at = bisect.bisect_left(key_times, pick.t_ms - tolerance)
            while at < len(key_times) and key_times[at] <= pick.t_ms + tolerance:
                t = key_times[at]
                if (low < t < high and spans[pick.slot].contains(t)
                        and (best is None or abs(t - pick.t_ms) < abs(best.t_ms - pick.t_ms))):
                    rank = keys[at]
                    best = _Pick(int(order[rank]), t, rank, pick.slot)
                at += 1
            out.append(best or pick)
        return out

    # ----------------------------------------------------------------- keyframe-aware decode

    def _run_seek(self, index: PacketIndex, picks: list[_Pick]) -> Iterator[SampledFrame]:
        """Decode the runs of packets the picks need, skipping non-reference packets that are
        not picked, and yield the picked frames. If the file does not demux as indexed, go on
        sequentially after the last yielded frame.

        Runs start at keyframes, so they decode independently: with several cores, one
        single-threaded decoder per core takes every n-th run (GOP-level parallelism scales
        better than a decoder's own frame threads, which stall at every run's end), and the
        frames come back in order through small bounded queues."""
        by_pts = {int(index.pts[p.packet]): p for p in picks}
        decoders = self.plan.threads or os.cpu_count() or 1
        runs = _runs(index, [p.packet for p in picks], merge_adjacent=decoders == 1)
        if decoders > 1 and len(runs) > 1 and PARALLEL_RUNS:
            frames = self._decode_parallel(index, runs, frozenset(by_pts), decoders)
        else:
            frames = self._decode_serial(index, runs, frozenset(by_pts), self.plan.threads)
        last_ms = -1
        mismatch = False
        try:
            for item in frames:
                if item[0] == "end":
                    self.grabbed += item[1]
                    continue
                _, pts, image = item
                pick = by_pts.pop(pts)
                self.retrieved += 1
                last_ms = pick.t_ms
                sampled = self._finish(pick.t_ms, pick.frame_index, image, pick.slot)
                if sampled is not None:
                    yield sampled
        except _IndexMismatch:
            mismatch = True
        finally:
            frames.close()
        if mismatch:
            self.strategy = "seek+sequential"
            yield from self._run(after_ms=last_ms)
        else:
            self.unreadable += len(by_pts)  # picked frames the decoder never gave

    def _decode_serial(self, index: PacketIndex, runs: list[tuple[int, int]],
                       wanted: frozenset[int], threads: int) -> Iterator[tuple]:
        """``("frame", pts, BGR image)`` for each wanted frame and ``("end", packets fed)``
        after each run, with one decoder (``threads``: its threads, 0 for FFmpeg's default)."""
        import av

        with av.open(str(self.path)) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            if threads:
                stream.codec_context.thread_count = threads
            skip_nonref = stream.codec_context.name in NONREF_CODECS
            for frame, fed in self._decode_runs(container, stream, index, runs, wanted,
                                                skip_nonref):
                if frame is None:
                    yield "end", fed
                else:
                    yield "frame", frame.pts, frame.to_ndarray(format="bgr24")

    def _decode_parallel(self, index: PacketIndex, runs: list[tuple[int, int]],
                         wanted: frozenset[int], decoders: int) -> Iterator[tuple]:
        """``_decode_serial`` spread over ``decoders`` threads, run ``r`` on thread ``r % n``;
        each thread hands over at most ``QUEUE_FRAMES`` frames ahead of the consumer."""
        decoders = min(decoders, len(runs))
        stop = threading.Event()
        queues: list[queue.Queue] = [queue.Queue(QUEUE_FRAMES) for _ in range(decoders)]

        def put(out: queue.Queue, item: tuple) -> bool:
            while not stop.is_set():
                try:
                    out.put(item, timeout=0.1)
                    return True
                except queue.Full:
                    continue
            return False

        def work(mine: list[tuple[int, int]], out: queue.Queue) -> None:
            try:
                for item in self._decode_serial(index, mine, wanted, 1):
                    if not put(out, item):
                        break
            except BaseException as error:  # noqa: BLE001 - handed to the consumer
                put(out, ("error", error))

        threads = [threading.Thread(target=work, args=(runs[n::decoders], queues[n]),
                                    name=f"decode-{n}", daemon=True) for n in range(decoders)]
        for thread in threads:
            thread.start()
        try:
            for run in range(len(runs)):
                source = queues[run % decoders]
                while True:
                    item = source.get()
                    if item[0] == "error":
                        raise item[1]
                    yield item
                    if item[0] == "end":
                        break
        finally:
            stop.set()
            for source in queues:  # unblock producers, drop what they made
                while True:
                    try:
                        source.get_nowait()
                    except queue.Empty:
                        break
            for thread in threads:
                thread.join()

    def _decode_runs(self, container, stream, index: PacketIndex, runs: list[tuple[int, int]],
                     wanted: frozenset[int], skip_nonref: bool) -> Iterator[tuple]:
        """``(frame, 0)`` for the wanted frames, in presentation order within each run, and
        ``(None, packets fed)`` at the end of each run."""
        context = stream.codec_context
        demuxed = self._packets(container, stream)
        position = 0  # index of the next packet ``demuxed`` gives
        for first, last in runs:
            if first - position > SEEK_GAP_PACKETS and index.dts[first] != NO_TS:
                demuxed, position = self._seek(container, stream, index, first)
            while position < first:  # demux through a short gap
                self._expect(next(demuxed, None), index, position)
                position += 1
            for i in range(first, last + 1):
                packet = next(demuxed, None)
                self._expect(packet, index, i)
                position += 1
                if skip_nonref:
                    context.skip_frame = "DEFAULT" if packet.pts in wanted else "NONREF"
                for frame in _decode(context, packet):
                    if frame.pts in wanted:
                        yield frame, 0
            for frame in _decode(context, None):  # drain: the run's last frames come out
                if frame.pts in wanted:
                    yield frame, 0
            context.flush_buffers()
            yield None, last + 1 - first

    @staticmethod
    def _packets(container, stream) -> Iterator:
        return (p for p in container.demux(stream) if p.size)

    @staticmethod
    def _expect(packet, index: PacketIndex, i: int) -> None:
        if packet is None or i >= len(index) or packet.pts != index.pts[i]:
            raise _IndexMismatch(i)

    def _seek(self, container, stream, index: PacketIndex, first: int) -> tuple[Iterator, int]:
        """Seek to the keyframe packet ``first`` (by its decode time, backward: the demuxer
        lands on it or on an earlier keyframe) and demux up to it."""
        container.seek(int(index.dts[first]), stream=stream, backward=True, any_frame=False)
        demuxed = self._packets(container, stream)
        for packet in demuxed:
            if packet.pts == index.pts[first]:
                return _prepend(packet, demuxed), first
            if packet.dts is not None and packet.dts > index.dts[first]:
                break
        raise _IndexMismatch(first)

    # ----------------------------------------------------------------- sequential

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
        cap = _open(self.path, self.plan.threads)
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
        return _open(self.path, self.plan.threads)

    def _run(self, after_ms: int = -1) -> Iterator[SampledFrame]:
        """Decode front to back; frames up to ``after_ms`` only advance the selector (the
        sequential continuation of a keyframe-aware pass that had to stop)."""
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
                if slot is None:
                    continue
                if t_ms <= after_ms:
                    selector.keep(t_ms, slot, None)
                    continue
                image = self._select(cap, selector, t_ms, slot)
                if image is None:
                    continue
                sampled = self._finish(t_ms, index, image, slot)
                if sampled is not None:
                    yield sampled
        finally:
            cap.release()

    def _finish(self, t_ms: int, index: int, image: np.ndarray, slot: int) -> SampledFrame | None:
        """The sample, or None when it is too blurry (counted)."""
        score = sharpness(image)
        if score < self.plan.min_sharpness:
            self.dropped_blurry += 1
            return None
        return SampledFrame(t_ms, index, image, score, self._spans[slot].index)

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


def _decode(context, packet) -> list:
    """Frames out of the decoder for ``packet`` (None: drain). A packet the decoder rejects
    (corrupt data) gives none, as ``grab()`` skips it in a sequential pass."""
    import av

    try:
        return context.decode(packet)
    except av.FFmpegError:
        return []


def _prepend(first, rest: Iterator) -> Iterator:
    yield first
    yield from rest


def iter_samples(path: Path | str, plan: SamplePlan, info: VideoInfo | None = None) -> Sampler:
    """Yield the frames ``plan`` selects from ``path``, in time order.

    The strategy (``plan.strategy``, ``Sampler.strategy``) is fixed up front: ``sequential``
    decodes front to back (one pass, except in count mode when ``info.duration_s`` is unknown:
    a first grab-only pass then measures the duration); ``seek`` demuxes once to index the
    packets and then decodes only what the kept frames need. Both give the same frames, times
    and indexes.

    ``info`` (from ``probe``) saves a second probe when the caller already has it. Returns a
    ``Sampler``: iterate it for the frames, then read its counters (``dropped_blurry`` ...).
    Raises VideoError up front when the file cannot be opened or decoded at all; a file that
    breaks midway (truncated download) just ends early.
    """
    return Sampler(path, plan, info)
