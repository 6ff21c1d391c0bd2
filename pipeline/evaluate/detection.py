"""Detection scores from matched frames: recall, precision, false boxes a frame, recall by object
size and average precision over the detector's score."""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .matching import FrameMatch

SIZES: tuple[tuple[str, float, float], ...] = (
    ("<32", 0, 32), ("32-64", 32, 64), ("64-128", 64, 128), (">128", 128, math.inf))
"""Object size bins, by the side of the square of the labelled box's area (sqrt(w * h), COCO's
area bins read as a side), in source pixels."""


@dataclass(frozen=True)
class DetectionScores:
    frames: int
    truth: int  # labelled boxes in the sampled frames (ignore regions left out)
    hits: int
    false: int
    recall: float | None  # None when there is nothing to find
    precision: float | None  # None when the run found nothing
    false_per_frame: float | None
    ap: float | None
    recall_by_size: dict[str, dict[str, Any]]

    def to_json(self) -> dict[str, Any]:
        def r(v: float | None) -> float | None:
            return None if v is None else round(v, 4)

        return {"frames": self.frames, "truth": self.truth, "hits": self.hits,
                "false": self.false, "misses": self.truth - self.hits, "recall": r(self.recall),
                "precision": r(self.precision), "false_per_frame": r(self.false_per_frame),
                "ap": r(self.ap), "recall_by_size": self.recall_by_size}


def size_bin(w: float, h: float) -> str:
    side = math.sqrt(max(w, 0.0) * max(h, 0.0))
    return next(name for name, lo, hi in SIZES if lo <= side < hi)


def average_precision(scored: Sequence[tuple[float, bool]], positives: int) -> float | None:
    """Area under the precision-recall curve as the score threshold falls (all-point
    interpolation, PASCAL VOC 2010+): ``scored`` holds (score, hit) of every box."""
    if positives == 0:
        return None
    hits = 0
    points = []  # (recall, precision) after each box, best score first
    for n, (_, hit) in enumerate(sorted(scored, key=lambda s: -s[0]), 1):
        hits += hit
        points.append((hits / positives, hits / n))
    ap, previous_recall = 0.0, 0.0
    for i, (rec, _) in enumerate(points):
        if rec > previous_recall:
            ap += (rec - previous_recall) * max(p for _, p in points[i:])
            previous_recall = rec
    return ap


def detection_scores(frames: Sequence[FrameMatch]) -> DetectionScores:
    hits = sum(len(f.pairs) for f in frames)
    false = sum(len(f.false) for f in frames)
    truth = hits + sum(len(f.missed) for f in frames)
    by_size: dict[str, list[int]] = {name: [0, 0] for name, _, _ in SIZES}  # [found, labelled]
    for f in frames:
        for t, found in [*((t, 1) for t, _ in f.pairs), *((t, 0) for t in f.missed)]:
            counts = by_size[size_bin(t.box[2], t.box[3])]
            counts[0] += found
            counts[1] += 1
    scored = [(r.score, True) for f in frames for _, r in f.pairs] + [
        (r.score, False) for f in frames for r in f.false]
    return DetectionScores(
        len(frames), truth, hits, false, hits / truth if truth else None,
        hits / (hits + false) if hits + false else None, false / len(frames) if frames else None,
        average_precision(scored, truth),
        {name: {"truth": n, "recall": round(found / n, 4) if n else None}
         for name, (found, n) in by_size.items()})
