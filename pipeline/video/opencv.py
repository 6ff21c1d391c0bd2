"""The ``sequential`` strategy (OpenCV): ``grab()`` on every frame (demux + decode, cheap) and
``retrieve()`` (colour conversion into a numpy array) only for the frames that are kept, so the
cost is bounded by decoding and memory stays at one frame. Needed for ``scene`` mode (every
image is compared) and for streams without timestamps.

OpenCV's random access is avoided (bar the opt-in, verified ``SamplePlan.seek_start``) because
``CAP_PROP_POS_FRAMES``/``CAP_PROP_POS_MSEC`` seeks are approximate on many files (they are
computed from the nominal frame rate), and ``CAP_PROP_FRAME_COUNT`` is only a container header
hint (raw ``.264`` streams report nonsense such as -192153584101141), so a loop never stops on
it: it stops when ``grab()`` fails.

Timestamps are the decoder's: on the FFmpeg backend ``CAP_PROP_POS_MSEC`` read right after a
``grab()`` is the presentation time of the grabbed frame (the frame's best-effort pts minus the
stream start), which is exact for variable frame rate files and B-frame streams. Streams without
timestamps (raw H.264) report 0 for every frame; those are detected frame by frame (a timestamp
that does not increase) and replaced by an estimate, see ``selection.Clock``.
"""
from __future__ import annotations

from collections.abc import Generator

import cv2
import numpy as np

from .probe import open_capture
from .selection import Clock, Scenes, Targets, last_end_ms, slot_of
from .source import Candidate, Job

SEEK_MIN_S = 5.0
"""``seek_start`` only seeks when the first range starts at least this far in: below it,
decoding from the start costs little and keeps frame indexes exact."""
SEEK_MARGIN_S = 2.0
"""Seek this much before the first range, so an imprecise seek still lands before it."""


class OpenCVSource:
    """Decode front to back. With ``after_ms``, frames up to it only advance the selector (the
    sequential continuation of a keyframe-aware pass that had to stop)."""

    strategy = "sequential"

    def __init__(self, job: Job, after_ms: int = -1) -> None:
        self.job = job
        self.after_ms = after_ms

    def frames(self) -> Generator[Candidate, None, None]:
        job, counts = self.job, self.job.counts
        spans = job.spans
        selector = job.selector(self._grabbed_readings)
        stop_ms = last_end_ms(spans)
        clock = Clock(job.frame_ms)
        cap = self._open_positioned()
        index = -1
        try:
            while cap.grab():
                counts.grabbed += 1
                t_ms = clock.stamp(cap.get(cv2.CAP_PROP_POS_MSEC))
                counts.estimated_timestamps = clock.estimated
                index = round(t_ms * job.info.fps / 1000) if counts.seeked else index + 1
                if stop_ms is not None and t_ms >= stop_ms:
                    break
                slot = slot_of(t_ms, spans)
                if slot is None:
                    continue
                if t_ms <= self.after_ms:
                    selector.keep(t_ms, slot, None)
                    continue
                image = self._select(cap, selector, t_ms, slot)
                if image is not None:
                    yield Candidate(t_ms, index, image, slot)
        finally:
            cap.release()

    def _grabbed_readings(self) -> Generator[float, None, None]:
        """The time readings of a grab-only pass (no image conversion), for count mode on a
        file whose container does not say how long it is."""
        cap = open_capture(self.job.path, self.job.plan.threads)
        try:
            while cap.grab():
                self.job.counts.grabbed += 1
                yield cap.get(cv2.CAP_PROP_POS_MSEC)
        finally:
            cap.release()

    def _seek_target_ms(self) -> float | None:
        """Where to seek before decoding, or None to decode from the start. Needs a stream with
        timestamps (``frame_count`` known) and a frame rate to derive frame indexes."""
        plan, info = self.job.plan, self.job.info
        first_ms = min(span.start_ms for span in self.job.spans)
        if (not plan.seek_start or first_ms < SEEK_MIN_S * 1000
                or info.frame_count is None or not info.fps):
            return None
        return first_ms - SEEK_MARGIN_S * 1000

    def _open_positioned(self) -> cv2.VideoCapture:
        """Open the capture, seeking when worth it.

        The seek is kept only when the first frame after it is verifiably before the first
        range (OpenCV seeks by nominal frame number, which can overshoot in a variable frame
        rate video, and silently does nothing on raw streams); otherwise decode from the start.
        That check frame is before every range, so it is never a sample and is not kept.
        """
        job = self.job
        cap = open_capture(job.path, job.plan.threads)
        target_ms = self._seek_target_ms()
        if target_ms is None:
            return cap
        first_ms = min(span.start_ms for span in job.spans)
        if cap.set(cv2.CAP_PROP_POS_MSEC, target_ms) and cap.grab():
            job.counts.grabbed += 1
            if 0 < cap.get(cv2.CAP_PROP_POS_MSEC) < first_ms:
                job.counts.seeked = True
                return cap
        cap.release()
        return open_capture(job.path, job.plan.threads)

    def _select(self, cap: cv2.VideoCapture, selector: Targets | Scenes, t_ms: int,
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
            self.job.counts.unreadable += 1
            return None
        self.job.counts.retrieved += 1
        return image
