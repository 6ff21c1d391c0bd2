"""How fast this machine works a config: a few seconds of real sampling and detection on the
first local files, for ``plan``'s time estimate."""
from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2

from ..config.schema import Config
from ..core.records import Video
from ..exec.cpus import threads_for
from ..stages import detect, sample
from ..video import Range, iter_samples


MEASURE_SECONDS = 3.0  # wall-clock budget of the measurement (at least MEASURE_MIN_FRAMES frames)
MEASURE_MIN_FRAMES = 3
MEASURE_MAX_FILES = 8  # short clips: frames from this many files at most, within the budget


@dataclass
class Measured:
    """What sampling and detecting the first frames of a few files gave, for an ``Estimate``."""

    frames: int = 0
    detections: int = 0
    jpeg_bytes: int = 0
    pixels: int = 0
    seconds: float = 0.0
    sids: list[str] = field(default_factory=list)
    files: int = 0  # files opened
    opened: int = 0  # of those, the ones after the first (whose opening warms the detector up too)
    open_seconds: float = 0.0  # what those took from opening to their first frame detected

    def estimate(self) -> Estimate:
        if self.frames == 0:
            raise ValueError("no file gave 2 frames or more to measure")
        sids = self.sids[0] if len(self.sids) == 1 else f"{len(self.sids)} videos"
        return Estimate(self.seconds / self.frames,
                        f"measured: {self.frames} frame{'s' if self.frames != 1 else ''} of {sids} "
                        f"sampled and detected in {self.seconds:.1f} s, after each video's first",
                        self.detections / self.frames, self.jpeg_bytes / self.pixels,
                        self.open_seconds / self.opened if self.opened else None)


def measured_estimate(config: Config, files: Iterable[tuple[Video, Path]],
                      budget_s: float = MEASURE_SECONDS) -> Estimate:
    """Sample and detect the first frames of ``files``, one after another, for about ``budget_s``
    seconds (and ``MEASURE_MIN_FRAMES`` frames), from ``MEASURE_MAX_FILES`` files at most. Each
    file's first frame is left out of the frames: it pays for opening the file (timed apart, as
    ``Estimate.seconds_per_source``), the very first for warming the detector up too. An
    unreadable file is skipped."""
    detector = detect.detector_for(config)  # one that cannot load raises: no estimate
    measured, started = Measured(), time.monotonic()
    for opened, (video, path) in enumerate(files):
        if opened >= MEASURE_MAX_FILES:  # a folder of one-frame clips gives no estimate, quickly
            break
        try:
            _measure_file(config, detector, video, path, measured, started + budget_s)
        except Exception:  # a broken file: the run will say so at its sample stage
            continue
        if measured.frames >= MEASURE_MIN_FRAMES and time.monotonic() - started >= budget_s:
            break
    return measured.estimate()


def _measure_file(config: Config, detector: Any, video: Video, path: Path, measured: Measured,
                  deadline: float) -> None:
    """Add the frames of ``path`` after its first to ``measured``, until ``deadline`` once
    ``MEASURE_MIN_FRAMES`` frames are in."""
    ranges = tuple(Range(s.start, s.end) for s in video.segments)
    params = [cv2.IMWRITE_JPEG_QUALITY, config.sample.quality]
    opening, warm = time.monotonic(), measured.files > 0
    measured.files += 1
    with iter_samples(str(path), sample.plan_for(config.sample, ranges, threads_for(config))) as samples:
        started = None
        for frame in samples:
            ok, data = cv2.imencode(".jpg", frame.image, params)
            found = detect.detect_one(detector, config.detect, frame.image)
            if started is None:
                started = time.monotonic()
                if warm:
                    measured.opened += 1
                    measured.open_seconds += started - opening
                continue
            measured.jpeg_bytes += len(data) if ok else 0
            measured.pixels += frame.image.shape[0] * frame.image.shape[1]
            measured.detections += len(found)
            measured.frames += 1
            if video.sid not in measured.sids:
                measured.sids.append(video.sid)
            if measured.frames >= MEASURE_MIN_FRAMES and time.monotonic() >= deadline:
                break
        if started is not None:
            measured.seconds += time.monotonic() - started


@dataclass
class Estimate:
    """Seconds per sampled frame, and where the number comes from."""

    seconds_per_frame: float
    source: str
    detections_per_frame: float | None = None
    frame_bpp: float | None = None  # JPEG bytes per frame pixel
    seconds_per_source: float | None = None  # opening a file up to its first frame detected
