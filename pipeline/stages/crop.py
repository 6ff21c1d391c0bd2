"""Crop stage: cut each kept detection out of its frame, padded and grown to the target aspect.

Output: ``crops/<sid>/<crop_id>.<ext>`` and ``crops/<sid>/crops.jsonl`` (one row per crop with
its geometry; its columns are defined in ``pipeline.core.records``). The geometry is a set of small
pure functions so it can be checked by exact numbers; the box is always grown to reach the
aspect ratio, never squashed.

Every crop the policy picks gets a row, also the ones this stage drops (``status: dropped``,
``drop_reason``: ``small``, ``outside`` or ``blurry`` from the quality filters, ``unconfirmed`` when
its track was detected in fewer than ``crop.min_track_hits`` sampled frames, ``per_track`` when
``crop.per_track`` keeps better shots of its track; see ``pipeline.algo.quality``). Only kept crops
get a file: the point of dropping 300 near-copies is not to store them. Each row also carries
the crop's track, quality score and perceptual hash, for the global dedupe step.
"""
from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ..core.layout import CROPS_INDEX, OutputLayout
from ..config.schema import Config, Crop, QualityWeights
from .blur import Bystanders, cover, fingerprint_parts, for_config
from ..algo.dedupe import phash_hex
from ..core.detections import CLASS_NAMES, Detections
from ..io.overlap import prefetch
from ..algo.quality import (DROPPED, KEPT, frontalness, outside_fraction, quality_scores,
                       reason_counts, select_per_track)
from ..core.records import CropRow, Video
from ..io.files import fresh_tmp_dir, read_jsonl, replace_dir, write_image, write_jsonl
from ..state.markers import fingerprint
from ..algo.track import track_hits
from ..video import sharpness
from .base import FRAMES, Context, Produced, Result, Results, Stage

VERSION = "2"  # 2: dropped crops listed with their reason; track, quality and hash per crop


@dataclass(frozen=True)
class CropResult(Result):
    """Crops kept, crops dropped by reason (``too_small``: those of reason ``small``), and the
    tracks the kept ones belong to."""

    counted = ("crops",)

    crops: int
    dropped: dict[str, int]
    too_small: int
    tracks: int

    def to_json(self) -> dict[str, Any]:
        return {"crops": self.crops, "dropped": self.dropped, "too_small": self.too_small,
                "tracks": self.tracks}

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> CropResult:
        return cls(raw.get("crops", 0), raw.get("dropped", {}), raw.get("too_small", 0),
                   raw.get("tracks", 0))



@dataclass(frozen=True)
class Region:
    """An integer pixel rectangle; it may reach outside the frame when ``outside: pad``."""

    x: int
    y: int
    w: int
    h: int


def padded_box(box: tuple[float, float, float, float], pad: tuple[float, float, float, float]
               ) -> tuple[float, float, float, float]:
    """(x0, y0, x1, y1) of the box grown by fractions of its size: (left, right, top, bottom)."""
    x, y, w, h = box
    left, right, top, bottom = pad
    return x - left * w, y - top * h, x + w + right * w, y + h + bottom * h


def grow_to_aspect(x0: float, y0: float, x1: float, y1: float, aspect: float | None
                   ) -> tuple[float, float, float, float]:
    """Grow the narrower dimension about the centre until width / height == aspect."""
    if aspect is None:
        return x0, y0, x1, y1
    w, h = x1 - x0, y1 - y0
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    if w / h < aspect:
        w = h * aspect
    else:
        h = w / aspect
    return cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2


def fit_in_frame(x0: float, y0: float, x1: float, y1: float, width: int, height: int
                 ) -> tuple[float, float, float, float]:
    """Shift the rectangle into the frame; shrink it about its centre (keeping its aspect) only
    when it is larger than the frame."""
    w, h = x1 - x0, y1 - y0
    scale = min(1.0, width / w, height / h)
    if scale < 1.0:
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
        w, h = w * scale, h * scale
        x0, y0 = cx - w / 2, cy - h / 2
    x0 = min(max(x0, 0.0), width - w)
    y0 = min(max(y0, 0.0), height - h)
    return x0, y0, x0 + w, y0 + h


def padded_rect(box: tuple[float, float, float, float], crop: Crop) -> tuple[float, float, float, float]:
    """(x0, y0, x1, y1) of the box padded and grown to the aspect, before any clamping."""
    p = crop.padding
    return grow_to_aspect(*padded_box(box, (p.left, p.right, p.top, p.bottom)), crop.aspect)


def crop_region(box: tuple[float, float, float, float], crop: Crop, width: int, height: int) -> Region:
    """The region to cut for a detection box in a ``width`` x ``height`` frame."""
    rect = padded_rect(box, crop)
    if crop.outside == "clamp":
        rect = fit_in_frame(*rect, width, height)
    x0, y0, x1, y1 = rect
    x, y = int(round(x0)), int(round(y0))
    w, h = max(1, int(round(x1 - x0))), max(1, int(round(y1 - y0)))
    if crop.outside == "clamp":
        w, h = min(w, width - x), min(h, height - y)
    return Region(x, y, w, h)


def cut(frame: np.ndarray, region: Region, border_color: tuple[int, int, int]) -> np.ndarray:
    """The region's pixels; parts outside the frame are filled with ``border_color``."""
    fh, fw = frame.shape[:2]
    ix0, iy0 = max(region.x, 0), max(region.y, 0)
    ix1, iy1 = min(region.x + region.w, fw), min(region.y + region.h, fh)
    if ix1 <= ix0 or iy1 <= iy0:
        return np.full((region.h, region.w, 3), border_color, dtype=frame.dtype)
    inside = frame[iy0:iy1, ix0:ix1]
    top, left = iy0 - region.y, ix0 - region.x
    bottom, right = region.y + region.h - iy1, region.x + region.w - ix1
    if top or left or bottom or right:
        inside = cv2.copyMakeBorder(inside, top, bottom, left, right, cv2.BORDER_CONSTANT,
                                    value=tuple(int(c) for c in border_color))
    return inside


def output_size(region: Region, size: int | None, aspect: float | None) -> tuple[int, int]:
    """(width, height) of the saved crop: its long side is ``size`` (no resize when None)."""
    if size is None:
        return region.w, region.h
    ratio = aspect if aspect is not None else region.w / region.h
    if ratio >= 1:
        return size, max(1, int(round(size / ratio)))
    return max(1, int(round(size * ratio))), size


def select(dets: Detections, crop: Crop) -> np.ndarray:
    """Indexes of the detections the crop policy keeps (detections arrive best score first)."""
    if len(dets) == 0:
        return np.zeros(0, dtype=int)
    if crop.policy == "largest":
        return np.array([int(np.argmax(dets.area))])
    if crop.policy == "top-k":
        return np.arange(min(crop.top_k, len(dets)))
    return np.arange(len(dets))


def crop_id(sid: str, t_ms: int, k: int) -> str:
    return f"{sid}_{t_ms:09d}_{k}"


def stage_fingerprint(config: Config, upstream: str) -> str:
    # blur_others is left out of the section when off: runs from before it keep their crops
    section = config.crop.model_dump(exclude=set() if config.crop.blur_others else {"blur_others"})
    return fingerprint(VERSION, section, *fingerprint_parts(config), upstream)


def encode_params(crop: Crop) -> list[int]:
    if crop.format == "jpg":
        return [cv2.IMWRITE_JPEG_QUALITY, crop.quality]
    if crop.format == "webp":
        return [cv2.IMWRITE_WEBP_QUALITY, crop.quality]
    return [cv2.IMWRITE_PNG_COMPRESSION, 3]


def drop_reason(region: Region, outside: float, sharp: float, crop: Crop) -> str | None:
    """The first quality filter the crop fails (``small``, ``outside``, ``blurry``), else None."""
    if min(region.w, region.h) < crop.min_size:
        return "small"
    if outside > crop.max_outside:
        return "outside"
    if sharp < crop.min_sharpness:
        return "blurry"
    return None


def resized(pixels: np.ndarray, out_w: int, out_h: int) -> np.ndarray:
    """The cut pixels at the saved crop's size."""
    h, w = pixels.shape[:2]
    if (out_w, out_h) == (w, h):
        return pixels
    return cv2.resize(pixels, (out_w, out_h),
                      interpolation=cv2.INTER_AREA if out_w < w else cv2.INTER_CUBIC)


def crop_frame(sid: str, c: Crop, det_row: dict[str, Any], dets: Detections, frame: np.ndarray,
               tmp: Path, params: list[int], bystanders: Bystanders | None = None
               ) -> list[dict[str, Any]]:
    """The crops of one frame: the ones that pass the quality filters written into ``tmp``, a row
    for each. The per-frame work of the stage, shared by ``run`` (frames read back from disk)
    and the overlapped stages (the frame already decoded for detection). ``bystanders``
    (``crop.blur_others``): the faces to cover in each crop; its rows then say how many
    (``blurred_faces``)."""
    fh, fw = frame.shape[:2]
    rows: list[dict[str, Any]] = []
    chosen = select(dets, c)
    covers = bystanders.plan(frame, dets) if bystanders is not None and len(chosen) else None
    for k, i in enumerate(chosen):
        x, y, w, h = (float(v) for v in dets.boxes[i])
        box = (x, y, w, h)
        region = crop_region(box, c, fw, fh)
        blue, green, red = c.border_color  # three, checked by the config
        cut_out = cut(frame, region, (blue, green, red))
        out_w, out_h = output_size(region, c.size, c.aspect)
        pixels = resized(cut_out, out_w, out_h)
        cid = crop_id(sid, det_row["t_ms"], k)
        name = f"{cid}.{c.format}"
        sharp = round(sharpness(pixels), 2)  # of the subject's crop, before bystanders are covered
        blurred = None
        if covers is not None:
            patches, own = covers[i]
            covered, blurred = cover(cut_out, (region.x, region.y), patches, own)
            pixels = resized(covered, out_w, out_h) if blurred else pixels
        outside = outside_fraction(padded_rect(box, c), fw, fh)
        reason = drop_reason(region, outside, sharp, c)
        if reason is None:  # written now, removed by ``finish`` if selection drops it
            write_image(tmp / name, pixels, params)
        marks = dets.landmarks[i]
        rows.append(CropRow(
            crop_id=cid, file=OutputLayout.crop_rel(sid, name), source_id=sid,
            status=KEPT if reason is None else DROPPED, drop_reason=reason,
            t_ms=det_row["t_ms"], frame_index=det_row["frame_index"],
            segment=det_row.get("segment", -1), cls=CLASS_NAMES[int(dets.class_id[i])],
            track_id=int(dets.track_id[i]), score=round(float(dets.scores[i]), 4),
            box_x=round(box[0], 1), box_y=round(box[1], 1),
            box_w=round(box[2], 1), box_h=round(box[3], 1),
            crop_x=region.x, crop_y=region.y, crop_w=region.w, crop_h=region.h,
            out_w=out_w, out_h=out_h, sharpness=sharp, outside=outside,
            frontal=frontalness(marks), phash=phash_hex(pixels),
            landmarks="" if np.isnan(marks).all() else json.dumps(np.round(marks, 1).tolist()),
            blurred_faces=blurred,
        ).to_json())
    return rows


def run(video: Video, config: Config, root: Path, progress: bool = False) -> Produced[CropResult]:
    c = config.crop
    layout = OutputLayout(root)
    final = layout.crops_dir(video.sid)
    tmp = fresh_tmp_dir(final)
    frames_dir = layout.frames_dir(video.sid)
    params = encode_params(c)
    rows: list[dict[str, Any]] = []
    det_rows = read_jsonl(layout.detections(video.sid))
    todo = [(det_row, dets) for det_row in det_rows
            if len(select(dets := Detections.from_json(det_row), c))]  # frames with a crop
    # Decoding the 720p JPEG is most of a crop's cost (docs/performance.md): done a few frames ahead
    # on a helper thread while this one cuts, scores and writes the crops.
    frames = prefetch(lambda item: cv2.imread(str(frames_dir / item[0]["file"])), todo)
    bystanders = for_config(config)
    for (det_row, dets), frame in frames:
        if frame is None:
            raise OSError(f"cannot read frame {frames_dir / det_row['file']}")
        rows += crop_frame(video.sid, c, det_row, dets, frame, tmp, params, bystanders)
    return finish(video, c, tmp, final, rows, track_hits(det_rows))


def finish(video: Video, c: Crop, tmp: Path, final: Path, rows: list[dict[str, Any]],
           hits: Mapping[int, int]) -> Produced[CropResult]:
    """Unconfirmed tracks, quality scores and ``per_track`` selection over the whole source, the
    files they drop removed, ``crops.jsonl`` written and the scratch folder renamed into place.
    ``hits``: the detected frames of each track (``pipeline.algo.track.track_hits``)."""
    drop_unconfirmed(rows, hits, c.min_track_hits)
    _score_and_select(rows, c)
    for row in rows:
        if row["status"] == DROPPED:
            (tmp / Path(row["file"]).name).unlink(missing_ok=True)
            row["file"] = None
    write_jsonl(tmp / CROPS_INDEX, rows)
    replace_dir(tmp, final)
    dropped = reason_counts(r["drop_reason"] for r in rows)
    # every crop file is an output, so a deleted or damaged crop redoes this unit (state.is_done)
    outputs = [OutputLayout.crop_rel(video.sid, CROPS_INDEX), *(r["file"] for r in rows if r["file"])]
    return outputs, CropResult(
        sum(r["status"] == KEPT for r in rows), dropped, dropped.get("small", 0),
        len({r["track_id"] for r in rows if r["status"] == KEPT and r["track_id"] >= 0}))


def drop_unconfirmed(rows: list[dict[str, Any]], hits: Mapping[int, int], min_hits: int) -> None:
    """Rows still kept whose track was detected in fewer than ``min_hits`` sampled frames become
    ``dropped``/``unconfirmed``: a box the detector saw once among close frames is more often a
    false one than a person (docs/people.md). A row without a track counts as unconfirmed."""
    if min_hits <= 1:
        return
    for r in rows:
        if r["status"] == KEPT and hits.get(r["track_id"], 0) < min_hits:
            r["status"], r["drop_reason"] = DROPPED, "unconfirmed"


def _score_and_select(rows: list[dict[str, Any]], c: Crop) -> None:
    """Each row's ``quality`` (relative to its track's crops that passed the filters), then
    ``crop.per_track``: rows it does not keep become ``dropped``/``per_track``."""
    passed = [r for r in rows if r["status"] == KEPT]
    weights = c.per_track.weights if c.per_track else QualityWeights()
    for r, q in zip(passed, quality_scores(passed, weights)):
        r["quality"] = q
    for r in rows:
        r.setdefault("quality", None)
    if c.per_track is None:
        return
    chosen = select_per_track(passed, [r["quality"] for r in passed], c.per_track.max,
                              c.per_track.min_gap_s)
    for i, r in enumerate(passed):
        if i not in chosen:
            r["status"], r["drop_reason"] = DROPPED, "per_track"


class CropStage(Stage[CropResult]):
    name, version, result = "crop", VERSION, CropResult
    work = FRAMES

    def fingerprint(self, ctx: Context, upstream: str) -> str:
        return stage_fingerprint(ctx.config, upstream)

    def run(self, ctx: Context, inputs: Results) -> Produced[CropResult]:
        return run(ctx.video, ctx.config, ctx.root, ctx.progress)


STAGE = CropStage()
