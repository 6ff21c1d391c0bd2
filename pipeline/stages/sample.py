"""Sample stage: pick frames from each downloaded video and write them as JPEGs.

Output: ``frames/<sid>/<t_ms:09d>.jpg`` plus ``frames/<sid>/frames.jsonl`` (one row per frame:
time, frame index, sharpness, segment). The folder is filled under a temporary name and renamed
into place, so a crash never leaves half a folder that looks finished.
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ..core.layout import FRAMES_INDEX, OutputLayout
from ..config.schema import Config, Sample
from ..core.errors import SourceConfigError
from ..exec.cpus import threads_for
from ..io.overlap import Background
from ..io.progress import bar
from ..core.records import Video
from ..io.files import fresh_tmp_dir, replace_dir, write_image, write_jsonl
from ..state.markers import fingerprint
from ..video import Range, SamplePlan, iter_samples, probe
from .base import FRAMES, Context, Produced, Result, Results, Stage
from .download import DownloadResult, VideoPart

VERSION = "1"


def stage_fingerprint(video: Video, config: Config, upstream: str) -> str:
    ranges = [(s.start, s.end) for s in video.segments]
    # ``strategy`` changes how frames are decoded, never which: not part of the fingerprint;
    # ``exact`` only when off, so fingerprints from before these keys existed stay valid.
    section = config.sample.model_dump(exclude={"strategy"})
    if section.get("exact", True):
        section.pop("exact", None)
    return fingerprint(VERSION, section, ranges, upstream)


def plan_for(sample: Sample, ranges: tuple[Range, ...], threads: int = 0) -> SamplePlan:
    """The sampler's plan from the config's ``sample`` section."""
    every = sample.every if sample.every is not None else 1.0
    return SamplePlan(mode=sample.mode, every_s=every, fps=sample.fps, count=sample.count,
                      scene_threshold=sample.scene.threshold if sample.scene else 27.0,
                      ranges=ranges, min_sharpness=sample.min_sharpness,
                      strategy=sample.strategy, exact=sample.exact, threads=threads)


def _part_ranges(video: Video, part: VideoPart) -> tuple[tuple[Range, ...], list[int]]:
    """Ranges to sample in a part's own time, and which config segment each range is.

    A part holding one downloaded segment is sampled whole; a whole video is sampled inside
    the configured segments (all of it when there are none).
    """
    if part.segment >= 0:
        return (), [part.segment]
    ranges = tuple(Range(s.start, s.end, s.label) for s in video.segments)
    return ranges, list(range(len(ranges)))


def check_segments(video: Video, duration_s: float | None) -> None:
    """A segment that starts after the video ends is a config mistake: say which one."""
    if not duration_s:
        return
    for i, seg in enumerate(video.segments):
        if seg.start >= duration_s:
            raise SourceConfigError(
                f"sources.{video.spec_index}.segments.{i}: starts at {seg.start:g} s, after the end "
                f"of the video ({duration_s:.1f} s)")


@dataclass(frozen=True)
class SampleResult(Result):
    """How many frames were kept and dropped, and how they were decoded; when sample, detect and
    crop ran as one pass, ``overlapped`` holds its peak frames in flight and busy seconds."""

    counted = ("frames", "dropped_blurry")

    frames: int
    dropped_blurry: int
    strategy: str
    overlapped: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        raw: dict[str, Any] = {"frames": self.frames, "dropped_blurry": self.dropped_blurry,
                               "strategy": self.strategy}
        if self.overlapped is not None:
            raw["overlapped"] = self.overlapped
        return raw

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> SampleResult:
        return cls(raw.get("frames", 0), raw.get("dropped_blurry", 0), raw.get("strategy", ""),
                   raw.get("overlapped"))

    def busy(self) -> dict[str, float]:
        return dict((self.overlapped or {}).get("busy_s", {}))

    def amounts(self) -> dict[str, int]:
        return {FRAMES: self.frames}


@dataclass
class Tally:
    """What the sampler reported over all parts of a video (final once iteration ends)."""

    dropped_blurry: int = 0
    strategies: set[str] = field(default_factory=set)


def frames_of(video: Video, config: Config, root: Path, parts: tuple[VideoPart, ...],
              tally: Tally, progress: bool = False, desc: str = "sample"
              ) -> Iterator[tuple[dict[str, Any], np.ndarray]]:
    """Every kept frame of the downloaded parts, in the order decoded: its ``frames.jsonl`` row
    and its decoded (not yet JPEG-encoded) pixels. The per-frame work of the stage, shared by
    this stage's ``run`` and the overlapped stages (``pipeline.stages.overlapped``)."""
    for part in parts:
        path = Path(part.path) if Path(part.path).is_absolute() else root / part.path
        ranges, segment_of = _part_ranges(video, part)
        info = probe(path)
        if ranges:
            check_segments(video, info.duration_s)
        # ``with``: a consumer that stops early (an error downstream) releases the decoder at once
        plan = plan_for(config.sample, ranges, threads_for(config))
        with iter_samples(str(path), plan, info) as samples:
            for frame in bar(samples, enabled=progress, desc=f"{desc} {video.sid[:30]}", unit="frame",
                             total=plan.expected_count(info.duration_s, 1.0 / info.fps if info.fps else 0.0)):
                t_ms = int(round(part.offset_s * 1000)) + frame.t_ms
                segment = segment_of[frame.range_index] if segment_of and frame.range_index >= 0 else (
                    part.segment if part.segment >= 0 else -1)
                yield {"t_ms": t_ms, "frame_index": frame.frame_index, "file": f"{t_ms:09d}.jpg",
                       "sharpness": round(float(frame.sharpness), 2), "segment": segment,
                       "width": int(frame.image.shape[1]), "height": int(frame.image.shape[0])}, frame.image
        tally.dropped_blurry += samples.dropped_blurry
        tally.strategies.add(samples.strategy)


def jpeg_params(config: Config) -> list[int]:
    return [cv2.IMWRITE_JPEG_QUALITY, config.sample.quality]


def finish(video: Video, tmp: Path, final: Path, rows: list[dict[str, Any]], tally: Tally
           ) -> Produced[SampleResult]:
    """``frames.jsonl`` written, the scratch folder renamed into place: the stage's outputs."""
    rows.sort(key=lambda r: r["t_ms"])
    write_jsonl(tmp / FRAMES_INDEX, rows)
    replace_dir(tmp, final)
    # every frame is an output, so a deleted or damaged JPEG redoes this unit (state.is_done)
    rel = OutputLayout.frame_rel
    return [rel(video.sid, FRAMES_INDEX), *(rel(video.sid, r["file"]) for r in rows)], \
        SampleResult(len(rows), tally.dropped_blurry, "+".join(sorted(tally.strategies)))


def run(video: Video, config: Config, root: Path, parts: tuple[VideoPart, ...],
        progress: bool = False) -> Produced[SampleResult]:
    final = OutputLayout(root).frames_dir(video.sid)
    tmp = fresh_tmp_dir(final)
    rows: list[dict[str, Any]] = []
    tally = Tally()
    params = jpeg_params(config)
    # JPEGs are encoded and written on a helper thread while the next frames decode.
    with Background() as writer:
        for row, image in frames_of(video, config, root, parts, tally, progress):
            writer.submit(write_image, tmp / row["file"], image, params)
            rows.append(row)
    return finish(video, tmp, final, rows, tally)


class SampleStage(Stage[SampleResult]):
    name, version, result = "sample", VERSION, SampleResult
    work = FRAMES

    def expected(self, config: Config, video: Video, duration_s: float | None, frame_s: float
                 ) -> int | None:
        """The frames it would keep (before the sharpness filter); None when that depends on the
        content (scene mode) or the duration is unknown."""
        ranges = tuple(Range(s.start, s.end) for s in video.segments)
        return plan_for(config.sample, ranges).expected_count(duration_s, frame_s)

    def fingerprint(self, ctx: Context, upstream: str) -> str:
        return stage_fingerprint(ctx.video, ctx.config, upstream)

    def run(self, ctx: Context, inputs: Results) -> Produced[SampleResult]:
        return run(ctx.video, ctx.config, ctx.root, inputs[DownloadResult].parts, ctx.progress)


STAGE = SampleStage()
