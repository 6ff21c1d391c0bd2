"""How well a clustering matches labelled identities: BCubed and pairwise precision / recall / F.

Both compare two labellings of the same items (crops): ``predicted`` (a cluster id per item, or
None for an item the run gave no cluster) and ``truth`` (the labelled person per item). An item
with no predicted cluster counts as a cluster of its own, so leaving a face out never raises
precision by merging it with others, and costs recall where the person had other faces.

BCubed (Bagga & Baldwin 1998; Amigó et al. 2009) scores every item: precision is the share of
the items in its predicted cluster that are the same person, recall the share of that person's
items that are in its cluster; both are averaged over items. Pairwise scores pairs of items: a
pair is predicted together when in one cluster, truly together when one person.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Hashable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Scores:
    """Precision, recall and their harmonic mean F, each in [0, 1], over ``items`` items."""

    precision: float
    recall: float
    f: float
    items: int

    def to_json(self) -> dict[str, float | int]:
        return {"precision": round(self.precision, 4), "recall": round(self.recall, 4),
                "f": round(self.f, 4), "items": self.items}


def _f(precision: float, recall: float) -> float:
    return 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)


def _clusters(predicted: Sequence[Hashable | None]) -> list[Hashable]:
    """The predicted labels with every None made a cluster of its own."""
    return [("unclustered", i) if p is None else ("cluster", p) for i, p in enumerate(predicted)]


def _checked(predicted: Sequence[Hashable | None], truth: Sequence[Hashable]) -> None:
    if len(predicted) != len(truth):
        raise ValueError(f"{len(predicted)} predicted labels for {len(truth)} true ones")


def bcubed(predicted: Sequence[Hashable | None], truth: Sequence[Hashable]) -> Scores:
    """BCubed precision, recall and F of ``predicted`` against ``truth`` (item by item)."""
    _checked(predicted, truth)
    if not truth:
        return Scores(1.0, 1.0, 1.0, 0)
    clusters = _clusters(predicted)
    both = Counter(zip(clusters, truth))
    cluster_size = Counter(clusters)
    truth_size = Counter(truth)
    precision = sum(n * n / cluster_size[c] for (c, _), n in both.items()) / len(truth)
    recall = sum(n * n / truth_size[t] for (_, t), n in both.items()) / len(truth)
    return Scores(precision, recall, _f(precision, recall), len(truth))


def _pairs(counts: Counter) -> int:
    return sum(n * (n - 1) // 2 for n in counts.values())


def pairwise(predicted: Sequence[Hashable | None], truth: Sequence[Hashable]) -> Scores:
    """Pairwise precision, recall and F: of the pairs put in one cluster, the share that are one
    person; of the pairs that are one person, the share put in one cluster. With no pair on a
    side its score is 1 (nothing claimed, nothing missed)."""
    _checked(predicted, truth)
    clusters = _clusters(predicted)
    together = _pairs(Counter(clusters))
    same = _pairs(Counter(truth))
    correct = _pairs(Counter(zip(clusters, truth)))
    precision = correct / together if together else 1.0
    recall = correct / same if same else 1.0
    return Scores(precision, recall, _f(precision, recall), len(truth))
