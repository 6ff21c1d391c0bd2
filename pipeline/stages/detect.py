"""Detect stage: run the configured detector on every sampled frame.

Output: ``detections/<sid>.jsonl``, one row per sampled frame (also frames with no detection), so
the crop stage can be re-tuned without detecting again and a user can audit what was found.

The stage ends by joining the detections of consecutive frames into tracks (``pipeline.algo.track``),
written as each box's ``track_id``: tracks belong to the detections, so crop re-tuning never
re-tracks. With ``detect.every: N`` the detector runs on every Nth sampled frame (and the last);
the frames between get the boxes of the tracks interpolated (their rows say ``detected: false``).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ..core.layout import OutputLayout
from ..config.schema import Config, Detect
from ..core.detections import Detections
from ..detectors.loaded import loaded_detector
from ..io.overlap import prefetch
from ..io.progress import bar
from ..core.records import Video
from ..io.files import read_jsonl, write_jsonl
from ..state.markers import fingerprint
from ..algo.appearance import Looks
from ..algo.track import TrackParams, interpolate, track
from .base import FACES, FRAMES, Context, Produced, Result, Results, Stage

VERSION = "2"  # 2: track ids, detect.every, tiles and upscaling


def detector_for(config: Config):
    """The config's detector, loaded once a process (``pipeline.detectors.loaded``)."""
    return loaded_detector(config.detect)


@dataclass(frozen=True)
class DetectResult(Result):
    """Frames read and detected, boxes and tracks found, and the detector (model/backend)."""

    counted = ("detections",)

    frames: int
    detected_frames: int
    detections: int
    tracks: int
    detector: str

    def to_json(self) -> dict[str, Any]:
        return {"frames": self.frames, "detected_frames": self.detected_frames,
                "detections": self.detections, "tracks": self.tracks, "detector": self.detector}

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> DetectResult:
        return cls(raw.get("frames", 0), raw.get("detected_frames", 0), raw.get("detections", 0),
                   raw.get("tracks", 0), raw.get("detector", ""))

    def facts(self) -> dict[str, str]:
        return {"detector": self.detector}

    def amounts(self) -> dict[str, int]:
        return {FACES: self.detections}


def stage_fingerprint(config: Config, upstream: str) -> str:
    return fingerprint(VERSION, config.detect.model_dump(), detector_for(config).version, upstream)


def runs(frames: list[dict[str, Any]]) -> list[range]:
    """Positions of the frames split where the config segment changes: no track (and no
    interpolated box) spans two segments, which may be minutes and a label apart."""
    cuts = [i for i in range(1, len(frames)) if frames[i].get("segment") != frames[i - 1].get("segment")]
    bounds = [0, *cuts, len(frames)]
    return [range(a, b) for a, b in zip(bounds, bounds[1:]) if b > a]


def detected_frames(frames: list[dict[str, Any]], every: int) -> list[int]:
    """Positions of the frames the detector runs on: every ``every``-th of each segment's run,
    and its last one (so the frames at the end lie between two detected ones)."""
    return sorted({i for r in runs(frames) for i in (*r[::every], r[-1])})


def detect_one(detector, d: Detect, image: np.ndarray) -> Detections:
    """One frame's kept detections: the per-frame work of the stage, shared by ``run`` and the
    overlapped stages (``pipeline.stages.overlapped``)."""
    floor = d.min_score if d.track.low_score is None else min(d.min_score, d.track.low_score)
    return detector.detect(image).filtered(floor, d.min_size, d.max_per_frame)


def run(video: Video, config: Config, root: Path, progress: bool = False) -> Produced[DetectResult]:
    detector = detector_for(config)
    layout = OutputLayout(root)
    frames_dir = layout.frames_dir(video.sid)
    frames = read_jsonl(layout.frames_index(video.sid))
    todo = [frames[i] for i in detected_frames(frames, config.detect.every)]
    found: list[Detections] = []
    # JPEGs are read and decoded a few frames ahead on a helper thread, while the detector runs.
    images = prefetch(lambda row: cv2.imread(str(frames_dir / row["file"])), todo)
    for frame, image in bar(images, enabled=progress, desc=f"detect {video.sid[:30]}",
                            unit="frame", total=len(todo)):
        if image is None:
            raise OSError(f"cannot read frame {frames_dir / frame['file']}")
        found.append(detect_one(detector, config.detect, image))
    return finish(video, config, root, frames, found)


def finish(video: Video, config: Config, root: Path, frames: list[dict[str, Any]],
           found: list[Detections]) -> Produced[DetectResult]:
    """``detections/<sid>.jsonl`` written (atomically): the stage's outputs. ``found`` holds the
    detections of ``detected_frames``, in order."""
    rows = tracked_rows(frames, found, config.detect, OutputLayout(root).frames_dir(video.sid))
    return write(video, config, root, rows, len(found))


def tracked_rows(frames: list[dict[str, Any]], found: list[Detections], d: Detect, frames_dir: Path
                 ) -> list[dict[str, Any]]:
    """The rows of ``detections/<sid>.jsonl``: every frame's row with its detections, tracks
    joined (and boxes interpolated between detected frames); the frames' JPEGs in ``frames_dir``
    are read again only to check a lost track re-found (``detect.track.lost_s``)."""
    all_dets, detected = _tracked(frames, found, d, frames_dir)
    return [{**frame, **dets.to_json(), "detected": i in detected}
            for i, (frame, dets) in enumerate(zip(frames, all_dets))]


def write(video: Video, config: Config, root: Path, rows: list[dict[str, Any]], detected: int
          ) -> Produced[DetectResult]:
    detector = detector_for(config)
    out = OutputLayout(root).detections(video.sid)
    write_jsonl(out, rows)
    tracks = {int(t) for row in rows for t in row["track_id"]}
    return [str(out.relative_to(root))], DetectResult(
        len(rows), detected, sum(len(row["boxes"]) for row in rows), len(tracks),
        f"{detector.name}/{detector.backend}")


def track_params(d: Detect) -> TrackParams:
    """The tracker's settings of a config's ``detect`` section."""
    p = d.track
    return TrackParams(min_iou=p.min_iou, max_distance=p.max_distance, max_missed=p.max_missed,
                       start_score=d.min_score, lost_s=p.lost_s)


def _tracked(frames: list[dict[str, Any]], found: list[Detections], d: Detect, frames_dir: Path
             ) -> tuple[list[Detections], set[int]]:
    """Every frame's detections with track ids (unique in the source), and the positions the
    detector ran on (``found`` holds their detections, in order)."""
    positions = detected_frames(frames, d.every)
    by_position = dict(zip(positions, found))
    params = track_params(d)
    out: list[Detections] = []
    next_id = 0
    for r in runs(frames):
        keys = [i for i in r if i in by_position]
        tracked = track([by_position[i] for i in keys], params, [frames[i]["t_ms"] / 1000 for i in keys],
                        Looks([frames_dir / frames[i]["file"] for i in keys]))
        tracked = [t.with_track_ids(np.where(t.track_id >= 0, t.track_id + next_id, -1))
                   for t in tracked]
        next_id = 1 + max((int(t.track_id.max()) for t in tracked if len(t)), default=next_id - 1)
        local = {i - r.start: t for i, t in zip(keys, tracked)}
        out += interpolate(local, [frames[i]["t_ms"] / 1000 for i in r])
    return out, set(positions)


class DetectStage(Stage[DetectResult]):
    name, version, result = "detect", VERSION, DetectResult
    work = FRAMES

    def preload(self, config: Config) -> None:
        detector_for(config)

    def fingerprint(self, ctx: Context, upstream: str) -> str:
        return stage_fingerprint(ctx.config, upstream)

    def run(self, ctx: Context, inputs: Results) -> Produced[DetectResult]:
        return run(ctx.video, ctx.config, ctx.root, ctx.progress)


STAGE = DetectStage()
