"""Tracks across sampled frames: which detections of a source are the same face or person.

Where it runs: at the end of the detect stage, and its ids are written into
``detections/<sid>.jsonl`` (``track_id``, one per box). A track is a property of the detections,
not of the crops: re-tuning the crop stage (padding, selection, quality filters) then never
re-tracks, and ``detect.every`` needs the tracks inside the detect stage anyway to follow them
through the frames it does not detect on.

How: a small online tracker, greedy rather than Hungarian (on a few boxes a frame the two agree
nearly always: on every frame of tud_campus they score the same, and greedy needs no scipy).
Each open track predicts its box in the next frame from its velocity, a running mean of its steps
(``VELOCITY_WEIGHT``); detections take the track whose prediction they overlap most
(IoU >= ``min_iou``, same class), the tracks seen in the frame before choosing first, then those
unseen for longer, in order; of two tracks crossing, the one in front (its box reaching lower in
the frame) takes the one box the detector found over both. Detections left over then try the
open tracks by centre distance to the prediction (in box sizes; sizes within a factor 1.5): slow
sampling (a frame every second or two) or a cut between two cameras moves a face further than
its own width, where IoU is 0 but the face is still the nearest one of its size. Last, boxes
scoring below ``start_score`` (``detect.track.low_score`` up to ``detect.min_score``) may
continue a track that is still unmatched, by IoU as above: a walker half hidden behind another
is often found with a lower score, and such a box is kept only when it continues someone
already followed. A track
unseen for more than ``max_missed`` sampled frames is lost; for ``lost_s`` seconds more it may
still take a box that matches no open track, near where it was heading and of the same colours
(``pipeline.algo.appearance``): a walker hidden behind another for a second. Then it ends. A
detection that matches no track starts one if it scores at least ``start_score`` (a weaker one
is dropped). Ids are numbered 0, 1, ... in order of appearance (best score first within a
frame), so the same detections always give the same ids.
"""
from __future__ import annotations

import bisect
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..core.detections import Detections, box_iou
from .appearance import colour_distance

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
    start_score: float = 0.0
    """A detection scoring below this starts no track: it is kept only when it continues one."""
    lost_s: float = 0.0
    """Seconds a track unseen for longer than ``max_missed`` may still be re-found (0: never)."""


VELOCITY_WEIGHT = 0.5
"""The share of a track's velocity that its newest step sets (the rest: its velocity so far).

Why not the last step alone (1.0, as before): a box that straddles two walkers for a frame, or
one cut short by an occluder, then bends the prediction of the frames after it only half as
much, and a walker hidden for a few frames is looked for where they were heading. On frames 1-35
of tud_campus, with the person defaults (``max_missed`` 10, boxes left over matched by their
distance to the prediction only), IDF1 0.746 -> 0.809 (identity switches 3 -> 2), and the
held-out frames 36-71 unchanged at 0.816; 0.3 gave the same, 0.7 less (docs/people.md)."""


LOST_SPEED = 2.0
"""How fast, in box sizes a second, a hidden person may have strayed from where their track was
heading: a lost track's gate grows by this much per second unseen. The fastest walkers of frames
1-35 of tud_campus cover 1.5-2.0 of their box sizes a second (median 1.1-1.5, the labels)."""


LOOK_GATE = 0.4
"""A lost track is re-found only by a box whose torso colours are within this Bhattacharyya
distance of its last sightings' (``pipeline.algo.appearance``)."""

SIGHTINGS = 5
"""The last sightings of a track whose colours are averaged: one box may be half hidden."""

Look = Callable[[int, np.ndarray], np.ndarray]
"""``look(position, box)``: the torso histogram of a box in the frame at that position."""


@dataclass
class _Track:
    id: int
    cls: int
    box: np.ndarray  # last seen x, y, w, h
    frame: int  # index (in the sequence) where last seen
    velocity: np.ndarray = field(default_factory=lambda: np.zeros(2, dtype=np.float32))
    hits: int = 1
    seen: list[tuple[int, np.ndarray]] = field(default_factory=list)  # the last sightings
    colours: np.ndarray | None = None  # ``look``'s answer, until the track is seen again

    def look(self, look: Look) -> np.ndarray:
        """The mean torso histogram of the last sightings (computed once while the track is lost:
        its sightings do not change, and each costs a frame read)."""
        if self.colours is None:
            self.colours = np.mean([look(f, b) for f, b in [*self.seen, (self.frame, self.box)]], axis=0)
        return self.colours

    def follow(self, box: np.ndarray, frame: int) -> None:
        """Continue the track with ``box`` seen in ``frame``: its velocity learns the step."""
        step = ((box[:2] + box[2:] / 2) - (self.box[:2] + self.box[2:] / 2)) / (frame - self.frame)
        w = VELOCITY_WEIGHT if self.hits > 1 else 1.0  # a second sighting: the first step whole
        self.velocity = w * step + (1 - w) * self.velocity
        self.seen = [*self.seen, (self.frame, self.box)][1 - SIGHTINGS:]
        self.box, self.frame, self.hits, self.colours = box, frame, self.hits + 1, None

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


def _recent_first(score: np.ndarray, gaps: np.ndarray, better_high: bool, limit: float
                  ) -> list[tuple[int, int]]:
    """``_greedy_pairs`` for the tracks seen most recently first (rows: tracks, ``gaps``: frames
    since each was seen), then for those unseen a frame longer, and so on: a track extrapolated
    over a gap must not take the box of one seen a frame ago (a face out of sight for 5 sampled
    frames was predicted onto another face in the YouTube Faces clip, at 5 frames a second)."""
    pairs: list[tuple[int, int]] = []
    free = np.arange(score.shape[1])
    for gap in np.unique(gaps):
        rows = np.flatnonzero(gaps == gap)
        found = _greedy_pairs(score[np.ix_(rows, free)], better_high, limit)
        pairs += [(int(rows[r]), int(free[c])) for r, c in found]
        free = np.delete(free, [c for _, c in found])
    return pairs


def _front_takes(pairs: list[tuple[int, int]], pred: np.ndarray, overlap: np.ndarray,
                 gaps: np.ndarray, min_iou: float) -> list[tuple[int, int]]:
    """The IoU pairs with each box that two crossing tracks both overlap given to the one in
    front: of tracks whose predictions overlap each other, the one whose box reaches lower in the
    frame (feet nearer the camera, as people stand on the ground), seen no less recently. Where
    two walkers cross, the detector finds one box, the front one's (the other is hidden); greedy
    IoU alone gave it to whichever overlapped it a little more, and that track then followed the
    wrong walker. Only a track that took no box this frame takes a box over."""
    taken = {r for r, _ in pairs}
    bottom = pred[:, 1] + pred[:, 3]
    crossing = box_iou(pred, pred) > 0
    out = []
    for r, c in pairs:
        rivals = [r2 for r2 in range(len(pred)) if r2 not in taken and crossing[r, r2]
                  and overlap[r2, c] >= min_iou and gaps[r2] <= gaps[r] and bottom[r2] > bottom[r]]
        if rivals:
            front = max(rivals, key=lambda r2: bottom[r2])
            taken.add(front)
            taken.discard(r)
            r = front
        out.append((r, c))
    return out


def _associate(tracks: list[_Track], dets: Detections, t: int, params: TrackParams,
               by_distance: bool = True) -> list[tuple[int, int]]:
    """(track, detection) pairs for one frame: by IoU with the predicted boxes first, then (with
    ``by_distance``) the detections left over by centre distance to the prediction (similar
    size). Weak boxes are matched by IoU only: one far from every prediction is as likely a false
    box as a person."""
    pred = np.stack([tr.predicted(t) for tr in tracks])
    gaps = np.array([t - tr.frame for tr in tracks])
    same = np.array([tr.cls for tr in tracks])[:, None] == dets.class_id[None, :]
    overlap = np.where(same, box_iou(pred, dets.boxes), -1.0)
    pairs = _front_takes(_recent_first(overlap, gaps, True, params.min_iou), pred, overlap, gaps,
                         params.min_iou)
    taken_t, taken_d = {r for r, _ in pairs}, {c for _, c in pairs}
    left_t = [r for r in range(len(tracks)) if r not in taken_t]
    left_d = [c for c in range(len(dets)) if c not in taken_d]
    if by_distance and left_t and left_d:
        sub_pred, sub_det = pred[left_t], dets.boxes[left_d]
        ok = same[np.ix_(left_t, left_d)] & (_size_ratio(sub_pred, sub_det) <= params.max_size_ratio)
        dist = np.where(ok, _centre_distance(sub_pred, sub_det), np.inf)
        pairs += [(left_t[r], left_d[c]) for r, c in _greedy_pairs(dist, False, params.max_distance)]
    return pairs


def _refind(lost: list[_Track], dets: Detections, t: int, times: list[float], params: TrackParams,
            look: Look) -> list[tuple[int, int]]:
    """(track, detection) pairs of tracks lost for longer than ``max_missed`` and detections no
    track took (each would start a new one): a detection is given to the lost track whose
    constant-velocity prediction is nearest, within ``max_distance`` box sizes plus
    ``LOST_SPEED`` a second unseen, of similar size and the same class, and dressed alike (the
    colours of the torso within ``LOOK_GATE`` of the track's last sightings). Only boxes nobody
    else wants: a lost track never takes one from a track still followed."""
    pred = np.stack([tr.predicted(t) for tr in lost])
    unseen = np.array([times[t] - times[tr.frame] for tr in lost])[:, None]
    same = np.array([tr.cls for tr in lost])[:, None] == dets.class_id[None, :]
    gate = params.max_distance + LOST_SPEED * unseen
    ok = same & (_size_ratio(pred, dets.boxes) <= params.max_size_ratio)
    near = np.where(ok, _centre_distance(pred, dets.boxes) / gate, np.inf)
    looks = {r: tr.look(look) for r, tr in enumerate(lost) if np.isfinite(near[r]).any()}
    for r, c in zip(*np.nonzero(near <= 1.0)):
        if colour_distance(looks[r], look(t, dets.boxes[c])) > LOOK_GATE:
            near[r, c] = np.inf
    return _greedy_pairs(near, False, 1.0)


def track(frames: list[Detections], params: TrackParams = TrackParams(),
          times: list[float] | None = None, look: Look | None = None) -> list[Detections]:
    """The detections with ``track_id`` set, frame by frame (the sequence in time order). A box
    scoring below ``params.start_score`` is left out unless it continues a track. Re-finding lost
    tracks (``params.lost_s``) needs ``times``, each frame's time in seconds (a gap in time,
    whatever the sampling rate), and ``look``, how a box in a frame looks."""
    if params.lost_s > 0 and (times is None or look is None):
        raise ValueError("re-finding lost tracks (lost_s) needs the frames' times and images")
    open_tracks: list[_Track] = []
    lost: list[_Track] = []
    next_id = 0
    out = []
    for t, dets in enumerate(frames):
        lost += [tr for tr in open_tracks if t - tr.frame > params.max_missed + 1]
        open_tracks = [tr for tr in open_tracks if t - tr.frame <= params.max_missed + 1]
        lost = [tr for tr in lost if times is not None and times[t] - times[tr.frame] <= params.lost_s]
        strong = dets[np.flatnonzero(dets.scores >= params.start_score)]
        weak = dets[np.flatnonzero(dets.scores < params.start_score)]
        ids = np.full(len(strong), -1, dtype=np.int32)
        weak_ids = np.full(len(weak), -1, dtype=np.int32)
        matched: set[int] = set()
        if open_tracks and len(strong):
            for r, c in _associate(open_tracks, strong, t, params):
                open_tracks[r].follow(strong.boxes[c].astype(np.float32), t)
                ids[c] = open_tracks[r].id
                matched.add(r)
        waiting = [tr for r, tr in enumerate(open_tracks) if r not in matched]
        if waiting and len(weak):
            for r, c in _associate(waiting, weak, t, params, by_distance=False):
                waiting[r].follow(weak.boxes[c].astype(np.float32), t)
                weak_ids[c] = waiting[r].id
        unclaimed = np.flatnonzero(ids < 0)
        if lost and len(unclaimed) and times is not None and look is not None:
            found = _refind(lost, strong[unclaimed], t, times, params, look)
            for r, c in found:
                lost[r].follow(strong.boxes[unclaimed[c]].astype(np.float32), t)
                ids[unclaimed[c]] = lost[r].id
            open_tracks += [lost[r] for r, _ in found]
            lost = [tr for r, tr in enumerate(lost) if r not in {r for r, _ in found}]
        for c in np.flatnonzero(ids < 0).tolist():  # detections arrive best score first
            open_tracks.append(_Track(next_id, int(strong.class_id[c]),
                                      strong.boxes[c].astype(np.float32), t))
            ids[c] = next_id
            next_id += 1
        kept = np.flatnonzero(weak_ids >= 0)
        out.append(Detections.concat([strong.with_track_ids(ids), weak[kept].with_track_ids(weak_ids[kept])]))
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
