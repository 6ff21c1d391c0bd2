"""Which labelled box each of the run's boxes found, frame by frame, and which source each truth
file labels.

Matching is the PASCAL VOC / COCO rule: the run's boxes of a frame, best score first, each take
the not yet taken labelled box they overlap most, if their IoU reaches the threshold. A box that
overlaps only an ignore region (IoU at the threshold) is set aside: neither a hit nor a false
box, and an ignore region is never a miss.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from .predictions import RunBox, SourceRun
from .truth import Box, Truth, TruthBox


def iou(a: Box, b: Box) -> float:
    """Intersection over union of two (x, y, w, h) boxes."""
    ix = max(0.0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = a[2] * a[3] + b[2] * b[3] - inter
    return inter / union if union > 0 else 0.0


@dataclass(frozen=True)
class FrameMatch:
    """One frame's outcome: (truth, run) pairs that match, run boxes that match nothing (false
    boxes), labelled boxes nobody found (misses). Ignore regions and what hit them are left out."""

    frame: int
    pairs: tuple[tuple[TruthBox, RunBox], ...]
    false: tuple[RunBox, ...]
    missed: tuple[TruthBox, ...]


def match_frame(frame: int, truth: Sequence[TruthBox], run: Sequence[RunBox], threshold: float
                ) -> FrameMatch:
    """Greedy matching by score (see the module doc)."""
    wanted = [t for t in truth if not t.ignore]
    ignored = [t for t in truth if t.ignore]
    taken: set[int] = set()
    pairs, false = [], []
    for r in sorted(run, key=lambda b: -b.score):
        overlaps = [(iou(t.box, r.box), i) for i, t in enumerate(wanted) if i not in taken]
        best, i = max(overlaps, default=(0.0, -1))
        if best >= threshold and i >= 0:
            taken.add(i)
            pairs.append((wanted[i], r))
        elif not any(iou(t.box, r.box) >= threshold for t in ignored):
            false.append(r)
    missed = tuple(t for i, t in enumerate(wanted) if i not in taken)
    return FrameMatch(frame, tuple(pairs), tuple(false), missed)


def match_source(truth: Truth, source: SourceRun, threshold: float, kept_only: bool = False
                 ) -> list[FrameMatch]:
    """Every sampled frame of ``source`` matched with ``truth``'s boxes of that frame (frames the
    run did not sample are left out: they were never looked at)."""
    by_frame_truth: dict[int, list[TruthBox]] = {}
    for t in truth.boxes:
        by_frame_truth.setdefault(t.frame, []).append(t)
    by_frame_run: dict[int, list[RunBox]] = {}
    for r in source.boxes:
        if r.kept or not kept_only:
            by_frame_run.setdefault(r.frame, []).append(r)
    return [match_frame(f, by_frame_truth.get(f, []), by_frame_run.get(f, []), threshold)
            for f in sorted(source.frames)]


def pair_truth(truths: Sequence[Truth], sources: Sequence[SourceRun]
               ) -> tuple[list[tuple[Truth, SourceRun]], list[Truth]]:
    """Each truth with the source it labels (its key is one of the source's names: id, file name
    or stem), and the truths that label no source of the run."""
    paired, unpaired = [], []
    for t in truths:
        source = next((s for s in sources if t.key in s.names), None)
        if source is None:
            unpaired.append(t)
        else:
            paired.append((t, source))
    return paired, unpaired
