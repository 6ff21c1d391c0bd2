"""``iter_samples``: the frames a plan keeps from a video, through the decode strategy that
suits the plan and the file (``pyav.PyAVSource`` or ``opencv.OpenCVSource``), with the
sharpness filter applied to either's frames."""
from __future__ import annotations

from collections.abc import Generator, Iterator
from pathlib import Path
from types import TracebackType

from .opencv import OpenCVSource
from .plan import SampledFrame, SamplePlan
from .probe import VideoInfo, probe
from .pyav import PyAVSource, seekable_index
from .selection import sharpness
from .source import Candidate, Counts, FrameSource, Job


class Sampler(Counts, Iterator[SampledFrame]):
    """The iterator ``iter_samples`` returns: yields ``SampledFrame``s in time order and counts
    what happened, for the caller's report (it is the ``Counts`` its source updates). Counters
    are final once iteration ends:

    - ``grabbed``: frames decoded (``grab()``; for ``seek``: packets given to the decoder),
      ``decoded``: for ``seek``, the frames the decoder gave (fewer than ``grabbed`` where it
      skipped non-reference frames), ``retrieved``: frames converted to images;
    - ``dropped_blurry``: selected frames dropped for ``min_sharpness``;
    - ``unreadable``: frames whose ``retrieve()`` failed (corrupt data), skipped;
    - ``estimated_timestamps``: frames whose time was estimated (no usable decoder timestamp);
    - ``seeked``: True when ``seek_start`` was used (frame indexes then derived from time);
    - ``strategy``: ``sequential`` or ``seek``, the one that runs (fixed on construction);
      ``keyframe_interval_s``: median keyframe interval when the packets were indexed.

    The capture is released when iteration ends, on ``close()``, or leaving a ``with`` block.
    """

    def __init__(self, path: Path | str, plan: SamplePlan, info: VideoInfo | None = None) -> None:
        super().__init__()
        self.path = Path(path)
        self.plan = plan
        self.info = info if info is not None else probe(self.path)
        self.keyframe_interval_s: float | None = None
        job = Job(self.path, plan, self.info, counts=self)
        self._job = job
        index = seekable_index(job)
        source: FrameSource | None = None
        if index is not None:
            self.keyframe_interval_s = index.keyframe_interval_s
            source = PyAVSource.planned(job, index)
        self._source: FrameSource = source or OpenCVSource(job)
        self._frames = self._sharp(self._source.frames())

    @property
    def strategy(self) -> str:
        """``sequential``, ``seek``, or ``seek+sequential`` when a keyframe-aware pass had to
        hand over to a sequential one (a file that does not demux as indexed)."""
        return self._source.strategy

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

    def _sharp(self, candidates: Generator[Candidate, None, None]) -> Generator[SampledFrame, None, None]:
        """The candidates as samples, without those too blurry for ``min_sharpness`` (counted)."""
        try:
            for t_ms, frame_index, image, slot in candidates:
                score = sharpness(image)
                if score < self.plan.min_sharpness:
                    self.dropped_blurry += 1
                    continue
                yield SampledFrame(t_ms, frame_index, image, score, self._job.spans[slot].index)
        finally:
            candidates.close()


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
