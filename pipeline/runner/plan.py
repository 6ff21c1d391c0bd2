"""``python -m pipeline plan``: what a run would do, before it does it.

It lists the sources exactly as a run does (``expand_sources``, which saves a playlist's or
search's listing under ``state/sources/`` so the run then uses the same videos), learns each
video's duration and size where it can without downloading (probing local and already
downloaded files; yt-dlp's listing for URLs), counts the frames the sampler would keep, and
estimates time and disk. Which units are done, failed or pending comes from ``run.status``, the
same markers a run skips by. Nothing is downloaded, sampled, detected or cropped.

The time estimate is per sampled frame (the stages whose work is measured in frames: sample,
detect, crop), plus ``SOURCE_SECONDS`` a source with work to do, ``RUN_SECONDS`` for the run's
end and, with a stage measured in faces (identity), the faces the frames give. Per frame: from the
timings earlier runs recorded in their markers when there are any, else measured on the first
videos available on disk for a few seconds of real decoding and detection, with the run's thread
limits. The stages say what their work is measured in and how much a video has of it
(``pipeline.stages.base``): this module names none of them.
"""
from __future__ import annotations

import json
import math
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


from ..config.schema import Config
from ..exec.cpus import limit_native_threads, threads_for
from ..state.ownership import check_output, identity_of
from ..core.records import Video
from ..sources.blocked import gated
from ..sources.expand import Filtered, SourceFailure, cap_per_source, expand_sources
from ..sources.ytdlp import expand_url
from ..stages import DOWNLOADS, FACES, FRAMES, NAMES, STAGES, Rate, Stage, measured_in
from ..state.markers import State
from ..video import VideoInfo, probe
from ..video.probe import container_info
from .measure import Estimate, measured_estimate
from .recorded import face_rate, read_result, recorded_estimate
from .status import status

SOURCE_SECONDS = 0.065
"""Seconds each source with work to do costs beyond its frames (opening and probing the file, its
download unit, fingerprints and markers) when the plan could not measure it (no local file to
open, or only one): fits of three runs of generated 320x240 clips on a shared, loaded 2-core
machine gave 50 and 78 ms; the same machine idle, 14 ms (docs/plan.md). A measured opening
(``Estimate.seconds_per_source``) follows the machine's speed and load, as the frames' does."""
RUN_SECONDS = 0.3
"""Seconds a run with work to do costs whatever its size (the dataset, manifest, summary and
sheets at its end): what five short face clips (12 frames, 13 crops) took beyond their frames and
sources, 0.3-0.4 s (docs/plan.md)."""
DEFAULT_JPEG_BPP = 0.15  # bytes per pixel of a frame when nothing was measured (q95, 720p video)


@dataclass
class PlannedVideo:
    """One video of the plan: what is known of it and where it stands."""

    video: Video
    duration_s: float | None = None
    frame_s: float = 0.0  # one frame's duration when probed: the last frame starts that early
    width: int | None = None
    height: int | None = None
    frames: int | None = None  # to sample (an estimate in scene mode: None)
    frames_made: bool = False  # the frames are on disk: ``frames`` is what a run recorded
    downloads: int = 0  # downloads still to do
    done: list[str] = field(default_factory=list)  # stages already done
    failed: tuple[str, str, str] | None = None  # (stage, class, message)
    stages: tuple[str, ...] = NAMES  # the stages this config runs

    @property
    def finished(self) -> bool:
        return all(s in self.done for s in self.stages)


@dataclass
class Plan:
    root: Path
    videos: list[PlannedVideo]
    failures: list[SourceFailure]  # entries that could not be listed
    estimate: Estimate | None
    per_face: Rate | None = None  # with a stage measured in faces (identity) and a figure known
    passed: int = 0  # listed videos the filters take (before --limit)
    filtered: list[Filtered] = field(default_factory=list)  # listed videos the filters leave out

    @property
    def pending(self) -> list[PlannedVideo]:
        return [v for v in self.videos if not v.finished and v.failed is None]

    @property
    def frames_to_sample(self) -> int:
        return sum(v.frames or 0 for v in self.pending if not v.frames_made)

    @property
    def frames_to_process(self) -> int:
        """Frames of the videos still to do (their frames on disk or not)."""
        return sum(v.frames or 0 for v in self.pending)

    @property
    def unknown(self) -> list[PlannedVideo]:
        return [v for v in self.pending if v.frames is None]

    def source_seconds(self) -> float:
        """What one source costs beyond its frames: as measured, else ``SOURCE_SECONDS``."""
        measured = None if self.estimate is None else self.estimate.seconds_per_source
        return SOURCE_SECONDS if measured is None else measured

    def overhead_seconds(self) -> float:
        """What the pending sources cost beyond their frames, and the run's own finish."""
        sources = len(self.pending)
        return RUN_SECONDS + self.source_seconds() * sources if sources else 0.0

    def seconds(self) -> float | None:
        """The frames' stages with the per-source and per-run overhead, and the faces' stages
        (identity) when configured."""
        if self.estimate is None:
            return None
        return (self.estimate.seconds_per_frame * self.frames_to_process + self.overhead_seconds()
                + (self.face_seconds() or 0.0))

    def faces(self) -> int | None:
        """Faces the pending frames should give (the detections a frame measured), or None."""
        per_frame = None if self.estimate is None else self.estimate.detections_per_frame
        return None if per_frame is None else int(math.ceil(per_frame * self.frames_to_process))

    def face_seconds(self) -> float | None:
        faces = self.faces()
        if self.per_face is None or faces is None:
            return None
        return self.per_face.seconds * faces

    @property
    def downloads(self) -> int:
        return sum(v.downloads for v in self.pending)

    def disk_bytes(self, config: Config) -> tuple[int, int, int] | None:
        """(frames bytes, crops bytes, crops at most) for the pending videos, or None."""
        if self.estimate is None:
            return None
        bpp = self.estimate.frame_bpp or DEFAULT_JPEG_BPP
        frames = sum((v.frames or 0) * (v.width or 0) * (v.height or 0) for v in self.pending
                     if not v.frames_made)
        per_frame = self.estimate.detections_per_frame
        if per_frame is None:
            per_frame = config.detect.max_per_frame
        crops = int(math.ceil(per_frame * self.frames_to_process))
        side, aspect = config.crop.size or 256, config.crop.aspect or 1.0
        crop_pixels = side * side * min(aspect, 1 / aspect)  # size is the long side
        return int(frames * bpp), int(crops * crop_pixels * bpp), crops


def expected(config: Config, stages: tuple[Stage, ...], planned: PlannedVideo) -> int | None:
    """How much work of their unit ``stages`` have in a video before any run: the first that can
    tell says (``Stage.expected``: the sampler for frames)."""
    for stage in stages:
        n = stage.expected(config, planned.video, planned.duration_s, planned.frame_s)
        if n is not None:
            return n
    return None


def recorded_amount(state: State, stages: tuple[Stage, ...], planned: PlannedVideo, unit: str
                    ) -> int | None:
    """How much of ``unit`` a run recorded for the video: the first of ``stages`` done for it
    whose result counts it (the frames a sampler kept), else None."""
    for stage in stages:
        found = read_result(state, stage, planned.video.sid) if stage.name in planned.done else None
        if found is not None and unit in found[1].amounts():
            return found[1].amounts()[unit]
    return None


def local_file(video: Video, state: State) -> Path | None:
    """The file a video is read from, when it is on disk: a local source, or one a stage's
    recorded result put there (``Result.video_file``: a finished download)."""
    if video.kind == "file":
        return Path(video.location)
    for stage in STAGES:
        found = read_result(state, stage, video.sid)
        name = None if found is None else found[1].video_file()
        if name:
            path = Path(name) if Path(name).is_absolute() else state.root / name
            return path if path.exists() else None
    return None


def describe(video: Video, state: State, listing: dict[str, dict[str, Any]]) -> PlannedVideo:
    """Duration and size: from the file's header when there is one (probed by decoding its first
    frames only when the header does not say), else the listing's."""
    planned = PlannedVideo(video)
    path = local_file(video, state)
    info: VideoInfo | None = None
    if path is not None:
        try:
            info = container_info(path) or probe(path)
        except Exception:  # unreadable: the run will say so at its sample stage
            info = None
    if info is not None:
        planned.duration_s, planned.width, planned.height = info.duration_s, info.width, info.height
        planned.frame_s = 1.0 / info.fps if info.fps else 0.0
        if video.kind == "url":  # a finished download
            planned.duration_s = _original_duration(state, video) or planned.duration_s
    else:
        entry = listing.get(video.sid, {})
        planned.duration_s = entry.get("duration")
        planned.width, planned.height = entry.get("width"), entry.get("height")
    return planned


def _original_duration(state: State, video: Video) -> float | None:
    """A download of segments only is shorter than the video: the info file has the real one."""
    info = state.layout.video_info(video.sid)
    try:
        return json.loads(info.read_text()).get("duration")
    except (OSError, ValueError):
        return None


def saved_listings(state: State) -> dict[str, dict[str, Any]]:
    """sid -> listing entry (duration, size when yt-dlp gave them) of every saved URL listing."""
    out: dict[str, dict[str, Any]] = {}
    for path in sorted(state.layout.listings_dir.glob("*.json")):
        try:
            for entry in json.loads(path.read_text())["entries"]:
                out.setdefault(entry["sid"], entry)
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return out


def make_plan(config: Config, limit: int | None = None, refresh: bool = False,
              measure: bool = True, config_file: Path | str | None = None) -> Plan:
    """The plan of a run of ``config`` (``limit``: at most that many videos per source).

    Listing URL sources saves the listings in the output folder, so the folder rules of a run
    apply (``pipeline.state.ownership``, raises ``OutputRefused``; ``config_file`` as for ``run``), and
    a folder the plan starts is marked as this config's: the run that follows then finds its
    own folder, not one it has to adopt or refuse.
    """
    root = config.output_dir
    claim = check_output(root.absolute(), identity_of(config.name, config_file, root.absolute()))
    state = State(root)
    # a bot check or HTTP 429 while listing backs off as in a run, with records of the plan's own
    # (a run in progress keeps its own; pipeline.sources.blocked)
    with tempfile.TemporaryDirectory() as hosts:
        listing_of = gated(expand_url, Path(hosts), config.download)
        listed = expand_sources(config, state, listing_of, refresh)
    expansion = cap_per_source(listed, limit)
    if claim.action != "ours" and state.dir.is_dir():  # listings were saved: the folder is made
        claim.write()
    listing = saved_listings(state)
    report = status(config)  # the run's own done / failed / pending logic, from the markers
    framing, downloading = measured_in(config, FRAMES), measured_in(config, DOWNLOADS)
    videos = []
    for video in expansion.videos:
        planned = describe(video, state, listing)
        planned.stages = tuple(report.stages)
        for stage, groups in report.stages.items():
            if video.sid in groups["done"]:
                planned.done.append(stage)
            for sid, kind, message in groups["failed"]:
                if sid == video.sid and planned.failed is None:
                    planned.failed = (stage, kind, message)
        planned.frames = recorded_amount(state, framing, planned, FRAMES)
        planned.frames_made = planned.frames is not None
        if not planned.frames_made:
            planned.frames = expected(config, framing, planned)
        planned.downloads = sum(expected(config, (s,), planned) or 0 for s in downloading
                                if s.name not in planned.done)
        videos.append(planned)
    plan = Plan(root, videos, expansion.failures, recorded_estimate(config, state),
                face_rate(config, state), len(listed.videos), listed.filtered)
    if plan.estimate is None and measure:
        # the run's native thread limits, or spinning OpenMP threads fight the decoder's on a small
        # machine and the measurement comes out many times the run's per-frame time
        limit_native_threads(threads_for(config))
        plan.estimate = _measure_first(config, plan, state)
    return plan


def _measure_first(config: Config, plan: Plan, state: State) -> Estimate | None:
    files = ((v.video, path) for v in plan.pending
             if (path := local_file(v.video, state)) is not None)
    try:
        return measured_estimate(config, files)
    except Exception:  # a detector that cannot load, no readable file: no estimate from it
        return None


def _clock(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    m, s = divmod(int(round(seconds)), 60)
    h, m = divmod(m, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def _span(seconds: float | None) -> str:
    """A time to wait: tenths of a second under a minute (a small run is not "about 0:01")."""
    return f"{seconds:.1f} s" if seconds is not None and seconds < 59.95 else _clock(seconds)


def _size(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"


def _state_of(v: PlannedVideo) -> str:
    if v.failed is not None:
        stage, kind, _ = v.failed
        return f"failed at {stage} ({kind})"
    if v.finished:
        return "done"
    todo = [s.name for s in STAGES if s.name in v.stages and s.name not in v.done and s.has_work(v.video)]
    return "to do: " + ", ".join(todo)


FILTERED_SHOWN = 5
"""Videos left out that ``plan`` names with their reason (``report`` lists them all)."""


def filter_lines(plan: Plan) -> list[str]:
    """``filter: N of M listed videos pass the filter`` and the first videos left out, with why."""
    listed = plan.passed + len(plan.filtered)
    lines = [f"filter: {plan.passed} of {listed} listed videos pass the filter"
             + (" (the others are never downloaded)" if plan.filtered else "")]
    for f in plan.filtered[:FILTERED_SHOWN]:
        lines.append(f"  left out: {f.video.sid}  {f.reason}")
    if len(plan.filtered) > FILTERED_SHOWN:
        lines.append(f"  ... and {len(plan.filtered) - FILTERED_SHOWN} more (python -m pipeline "
                     "report CONFIG lists every video)")
    return lines


def plan_lines(plan: Plan, config: Config) -> list[str]:
    """The plan as the CLI prints it."""
    lines = [f"output: {plan.root}",
             f"videos: {len(plan.videos)} ({sum(v.finished for v in plan.videos)} done, "
             f"{len(plan.pending)} to do, {sum(v.failed is not None for v in plan.videos)} failed)"]
    width = max([len(v.video.sid) for v in plan.videos] + [6])
    lines.append(f"  {'source':<{width}}  {'length':>7}  {'size':>9}  {'frames':>6}  state")
    for v in plan.videos:
        size = f"{v.width}x{v.height}" if v.width and v.height else "?"
        frames = "?" if v.frames is None else str(v.frames)
        lines.append(f"  {v.video.sid:<{width}}  {_clock(v.duration_s):>7}  {size:>9}  "
                     f"{frames:>6}  {_state_of(v)}")
    for f in plan.failures:
        lines.append(f"  sources.{f.entry} could not be listed [{f.kind}]: {f.message}")
    if any(config.filter_for(i) is not None for i in range(len(config.sources))):
        lines += filter_lines(plan)
    unknown = f" (+ {len(plan.unknown)} video(s) of unknown length until downloaded)" if plan.unknown else ""
    lines.append(f"frames to sample: {plan.frames_to_sample}{unknown}")
    seconds = plan.seconds()
    if plan.estimate is None:
        lines.append("time: no estimate (no earlier run, and no video on disk to measure)")
    else:
        framing = " + ".join(s.name for s in measured_in(config, FRAMES))
        facing = " + ".join(s.name for s in measured_in(config, FACES))
        embed = plan.face_seconds()
        faces = "" if embed is None or plan.per_face is None else (
            f"; {facing}: {_span(embed)} for about {plan.faces()} faces at "
            f"{1000 * plan.per_face.seconds:.0f} ms, {plan.per_face.source}")
        lines.append(f"time: about {_span(seconds)} for {framing}"
                     + (f" + {facing}" if faces else "")
                     + f" ({plan.estimate.seconds_per_frame:.3f} s/frame; {plan.estimate.source}; "
                       f"{_span(plan.overhead_seconds())} for opening {len(plan.pending)} source(s) at "
                       f"{1000 * plan.source_seconds():.0f} ms each and finishing the run"
                     + faces + ")" + (f", plus {plan.downloads} download(s)" if plan.downloads else ""))
        disk = plan.disk_bytes(config)
        if disk is not None:
            lines.append(f"disk: about {_size(disk[0])} of frames, {_size(disk[1])} of crops "
                         f"(about {disk[2]} crops before selection)")
    urls = any(s.url is not None for s in config.sources)
    lines.append("nothing was run" + ("; listings of URLs are saved and reused by the run" if urls else ""))
    return lines
