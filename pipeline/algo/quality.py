"""Which crops are worth keeping: quality filters, a quality score, and the best shots per track.

A video sampled every second shows the same face hundreds of times, many of them blurred or
half-turned. These small pure functions decide, per crop, whether it is dropped and why:

- quality filters (``crop.min_size``, ``crop.max_outside``, ``crop.min_sharpness``): the first one
  that fails is the crop's ``drop_reason`` (``small``, ``outside``, ``blurry``);
- selection (``crop.per_track: {max: K, min_gap_s: S}``): each track keeps its K best crops, at
  least S seconds apart; the others are dropped as ``per_track``.

"Best" is a weighted mean of four terms in [0, 1], each relative to the crop's own track so that
a track of small or soft faces still keeps its best shots: the detector score, the sharpness and
the box area (each divided by the track's largest), and for faces with landmarks the frontalness.
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from ..config.schema import QualityWeights

__all__ = ["DROPPED", "DROP_REASONS", "KEPT", "frontalness", "outside_fraction", "quality_scores",
           "reason_counts", "select_per_track"]

KEPT, DROPPED = "kept", "dropped"
"""Manifest ``status`` values of this module's decisions (review adds ``rejected``)."""
DROP_REASONS = ("small", "outside", "blurry", "unconfirmed", "per_track", "identity", "duplicate",
                "per_person")
"""Every ``drop_reason`` a manifest row can have, in the order they are decided."""


def frontalness(landmarks: np.ndarray | Sequence[Sequence[float]] | None) -> float | None:
    """How squarely a face looks at the camera, 1 frontal .. 0 profile; None without landmarks.

    From YuNet's five points (right eye, left eye, nose tip, right and left mouth corner, as
    seen in the image): turning the head (yaw) moves the nose tip off the middle between the
    eyes, nodding (pitch) moves it towards the eye line or the mouth. Measured along and across
    the eye line, so a tilted head (roll) is still frontal.
    """
    if landmarks is None:
        return None
    pts = np.asarray(landmarks, dtype=np.float64).reshape(-1, 2)
    if pts.shape != (5, 2) or not np.isfinite(pts).all():
        return None
    right_eye, left_eye, nose, mouth_r, mouth_l = pts
    axis = left_eye - right_eye
    span = float(np.hypot(*axis))
    if span < 1e-6:
        return 0.0
    along = float(np.dot(nose - right_eye, axis)) / span ** 2  # 0.5: between the eyes
    normal = np.array([-axis[1], axis[0]]) / span
    mouth_depth = float(np.dot((mouth_r + mouth_l) / 2 - right_eye, normal))
    if abs(mouth_depth) < 1e-6:
        return 0.0
    across = float(np.dot(nose - right_eye, normal)) / mouth_depth  # ~0.55 on a level face
    yaw = min(1.0, abs(along - 0.5) * 2)
    pitch = min(1.0, abs(across - 0.55) / 0.45)
    return round(max(0.0, (1 - yaw) * (1 - pitch)), 4)


def outside_fraction(rect: tuple[float, float, float, float], width: int, height: int) -> float:
    """Share of the rectangle (x0, y0, x1, y1) that lies outside a ``width`` x ``height`` frame."""
    x0, y0, x1, y1 = rect
    area = max(x1 - x0, 0.0) * max(y1 - y0, 0.0)
    if area <= 0:
        return 1.0
    iw = max(0.0, min(x1, width) - max(x0, 0.0))
    ih = max(0.0, min(y1, height) - max(y0, 0.0))
    return round(1.0 - iw * ih / area, 4)


def quality_scores(crops: Sequence[dict[str, Any]],
                   weights: QualityWeights = QualityWeights()) -> list[float]:
    """A quality in [0, 1] per crop row (keys ``track_id``, ``score``, ``sharpness``, ``box_w``,
    ``box_h``, ``frontal``), its terms relative to the crop's track (``track_id`` < 0: alone)."""
    def track_of(i: int) -> Any:
        tid = crops[i].get("track_id", -1)
        return tid if tid is not None and tid >= 0 else ("alone", i)

    best_sharp: dict[Any, float] = {}
    best_area: dict[Any, float] = {}
    for i, c in enumerate(crops):
        key = track_of(i)
        best_sharp[key] = max(best_sharp.get(key, 0.0), float(c.get("sharpness") or 0.0))
        best_area[key] = max(best_area.get(key, 0.0), float(c["box_w"]) * float(c["box_h"]))
    out = []
    for i, c in enumerate(crops):
        key = track_of(i)
        terms = [(weights.score, float(c.get("score") or 0.0)),
                 (weights.sharpness, _ratio(float(c.get("sharpness") or 0.0), best_sharp[key])),
                 (weights.size, _ratio(float(c["box_w"]) * float(c["box_h"]), best_area[key]))]
        if c.get("frontal") is not None:
            terms.append((weights.frontal, float(c["frontal"])))
        total = sum(w for w, _ in terms)
        out.append(round(sum(w * v for w, v in terms) / total, 4) if total > 0 else 0.0)
    return out


def _ratio(value: float, best: float) -> float:
    return value / best if best > 0 else 0.0


def select_per_track(crops: Sequence[dict[str, Any]], quality: Sequence[float], max_count: int,
                     min_gap_s: float = 0.0) -> set[int]:
    """Indexes of the crops each track keeps: its ``max_count`` best by quality, taken best first,
    each at least ``min_gap_s`` seconds (``t_ms``) from those already taken. Ties go to the
    earlier crop, so the choice is deterministic. Crops with no track (``track_id`` < 0) are each
    a track of their own."""
    tracks: dict[Any, list[int]] = {}
    for i, c in enumerate(crops):
        tid = c.get("track_id", -1)
        tracks.setdefault(tid if tid is not None and tid >= 0 else ("alone", i), []).append(i)
    keep: set[int] = set()
    gap_ms = min_gap_s * 1000
    for members in tracks.values():
        order = sorted(members, key=lambda i: (-quality[i], crops[i]["t_ms"], crops[i]["crop_id"]))
        taken: list[float] = []
        for i in order:
            if len(taken) >= max_count:
                break
            t = float(crops[i]["t_ms"])
            if all(abs(t - u) >= gap_ms - 1e-6 for u in taken):
                taken.append(t)
                keep.add(i)
    return keep


def reason_counts(reasons: Iterable[str | None]) -> dict[str, int]:
    """{reason: count} in ``DROP_REASONS`` order (unknown reasons after), zero counts left out."""
    counts: dict[str, int] = {}
    for r in reasons:
        if r:
            counts[r] = counts.get(r, 0) + 1
    order = {r: i for i, r in enumerate(DROP_REASONS)}
    return dict(sorted(counts.items(), key=lambda kv: (order.get(kv[0], math.inf), kv[0])))
