"""Tracks across sampled frames: which detections of a source are the same face or person.

Where it runs: at the end of the detect stage, and its ids are written into
``detections/<sid>.jsonl`` (``track_id``, one per box). A track is a property of the detections,
not of the crops: re-tuning the crop stage (padding, selection, quality filters) then never
re-tracks, and ``detect.every`` needs the tracks inside the detect stage anyway to follow them
through the frames it does not detect on.

How: a small online tracker, greedy rather than Hungarian (on a few boxes a frame the two agree
nearly always, and greedy needs no scipy). Each open track predicts its box in the next frame
from its last velocity; detections take the track whose prediction they overlap most
(IoU >= ``min_iou``, same class). Detections left over then try the open tracks by centre
distance (in box sizes, to the prediction or to where the track was last seen, whichever is
nearer; sizes within a factor 1.5): slow sampling (a frame every second or two) or a cut between
two cameras moves a face further than its own width, where IoU is 0 but the face is still the
nearest one of its size. A
track unseen for more than ``max_missed`` sampled frames ends; a detection that matches no track
starts one. Ids are numbered 0, 1, ... in order of appearance (best score first within a frame),
so the same detections always give the same ids.
"""
from __future__ import annotations

import bisect
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..core.detections import Detections, box_iou

__all__ = ["TrackParams", "interpolate", "track", "track_hits"]


@dataclass(frozen=True)
class TrackParams:
    min_iou: float = 0.3
    """A detection continues a track when it overlaps the track's predicted box this much."""
    max_distance: float = 1.5
    """Fallback: centre within this many box sizes (sqrt of the area) of the prediction."""
    max_missed: int = 5
    """Sampled frames a track may go undetected (occlusion, a missed detection) and continue."""
    max_size_ratio: float = 1.5
    """Fallback only: the sizes of the track and the detection differ at most by this factor."""


@dataclass
class _Track:
    id: int
    cls: int
    box: np.ndarray  # last seen x, y, w, h
    frame: int  # index (in the sequence) where last seen
    velocity: np.ndarray = field(default_factory=lambda: np.zeros(2, dtype=np.float32))

    def predicted(self, frame: int) -> np.ndarray:
        box = self.box.copy()
        box[:2] += self.velocity * (frame - self.frame)
        return box


def _greedy_pairs(score: np.ndarray, better_high: bool, limit: float) -> list[tuple[int, int]]:
    """(row, col) pairs taken best first, each row and column at most once, within ``limit``."""
    if score.size == 0:
        return []
    flat = -score.ravel() if better_high else score.ravel()
    order = np.argsort(flat, kind="stable")
    rows_used: set[int] = set()
    cols_used: set[int] = set()
    pairs = []
    for k in order:
        value = score.flat[k]
        if (value < limit) if better_high else (value > limit):
            break
        r, c = divmod(int(k), score.shape[1])
        if r in rows_used or c in cols_used:
            continue
        rows_used.add(r)
        cols_used.add(c)
        pairs.append((r, c))
    return pairs


def _centre_distance(tracks: np.ndarray, dets: np.ndarray) -> np.ndarray:
    """Centre distance of every predicted track box to every detection, in track box sizes."""
    ct = tracks[:, None, :2] + tracks[:, None, 2:] / 2
    cd = dets[None, :, :2] + dets[None, :, 2:] / 2
    size = np.sqrt(np.maximum(tracks[:, 2] * tracks[:, 3], 1e-6))[:, None]
    return np.linalg.norm(ct - cd, axis=2) / size


def _size_ratio(tracks: np.ndarray, dets: np.ndarray) -> np.ndarray:
    at = np.maximum(tracks[:, 2] * tracks[:, 3], 1e-6)[:, None]
    ad = np.maximum(dets[:, 2] * dets[:, 3], 1e-6)[None, :]
    return np.sqrt(np.maximum(at / ad, ad / at))


def track(frames: list[Detections], params: TrackParams = TrackParams()) -> list[Detections]:
    """The same detections with ``track_id`` set, frame by frame (the sequence in time order)."""
    open_tracks: list[_Track] = []
    next_id = 0
    out = []
    for t, dets in enumerate(frames):
        open_tracks = [tr for tr in open_tracks if t - tr.frame <= params.max_missed + 1]
        ids = np.full(len(dets), -1, dtype=np.int32)
        if open_tracks and len(dets):
            pred = np.stack([tr.predicted(t) for tr in open_tracks])
            same = np.array([tr.cls for tr in open_tracks])[:, None] == dets.class_id[None, :]
            overlap = np.where(same, box_iou(pred, dets.boxes), -1.0)
            pairs = _greedy_pairs(overlap, True, params.min_iou)
            taken_t = {r for r, _ in pairs}
            taken_d = {c for _, c in pairs}
            left_t = [r for r in range(len(open_tracks)) if r not in taken_t]
            left_d = [c for c in range(len(dets)) if c not in taken_d]
            if left_t and left_d:
                sub_pred, sub_det = pred[left_t], dets.boxes[left_d]
                last = np.stack([open_tracks[r].box for r in left_t])
                # nearer of where it was heading and where it was last seen: a cut or a turn
                # makes the prediction wrong, and then the last place is the better guess
                dist = np.minimum(_centre_distance(sub_pred, sub_det), _centre_distance(last, sub_det))
                ok = same[np.ix_(left_t, left_d)] & (_size_ratio(sub_pred, sub_det) <= params.max_size_ratio)
                dist = np.where(ok, dist, np.inf)
                pairs += [(left_t[r], left_d[c])
                          for r, c in _greedy_pairs(dist, False, params.max_distance)]
            for r, c in pairs:
                tr = open_tracks[r]
                box = dets.boxes[c].astype(np.float32)
                step = (box[:2] + box[2:] / 2) - (tr.box[:2] + tr.box[2:] / 2)
                tr.velocity = step / (t - tr.frame)
                tr.box, tr.frame = box, t
                ids[c] = tr.id
        for c in np.flatnonzero(ids < 0).tolist():  # detections arrive best score first
            open_tracks.append(_Track(next_id, int(dets.class_id[c]), dets.boxes[c].astype(np.float32), t))
            ids[c] = next_id
            next_id += 1
        out.append(dets.with_track_ids(ids))
    return out


def interpolate(keyframes: dict[int, Detections], times: list[float]) -> list[Detections]:
    """Detections for every frame of ``times`` from the tracked detections of some of them.

    ``keyframes`` maps a frame's position to its tracked detections (``detect.every``: the frames
    the detector ran on). A frame in between gets, for each track seen on both keyframes around
    it, the box, landmarks and score interpolated linearly in time (the score is the lower of the
    two: a followed box is no surer than its ends). Tracks that start or end in between are not
    extrapolated.
    """
    known = sorted(keyframes)
    out: list[Detections] = []
    for i, t in enumerate(times):
        if i in keyframes:
            out.append(keyframes[i])
            continue
        j = bisect.bisect_left(known, i)
        if j == 0 or j == len(known):
            out.append(Detections.empty())
            continue
        before, after = known[j - 1], known[j]
        a, b = keyframes[before], keyframes[after]
        span = times[after] - times[before]
        w = (t - times[before]) / span if span > 0 else 0.0
        in_b = set(b.track_id.tolist())
        common = [tid for tid in a.track_id.tolist() if tid >= 0 and tid in in_b]
        if not common:
            out.append(Detections.empty())
            continue
        ia = np.array([a.track_id.tolist().index(tid) for tid in common])
        ib = np.array([b.track_id.tolist().index(tid) for tid in common])
        out.append(Detections((1 - w) * a.boxes[ia] + w * b.boxes[ib],
                              np.minimum(a.scores[ia], b.scores[ib]), a.class_id[ia],
                              (1 - w) * a.landmarks[ia] + w * b.landmarks[ib], a.track_id[ia]))
    return out


def track_hits(rows: Iterable[dict[str, Any]]) -> Counter[int]:
    """Track id -> the sampled frames the detector found it in, from ``detections/<sid>.jsonl``
    rows: frames between detected ones (``detected: false``, boxes interpolated) do not count,
    so a track is confirmed by the detector and never by its own interpolation."""
    hits: Counter[int] = Counter()
    for row in rows:
        if row.get("detected", True):
            hits.update({int(t) for t in row.get("track_id", []) if int(t) >= 0})
    return hits
