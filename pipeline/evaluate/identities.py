"""Identity clusters against labelled identities: the crops that found a labelled box carry
that box's identity, and ``clusters`` scores the run's ``identity_cluster`` of those crops."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .clusters import bcubed, pairwise
from .matching import FrameMatch
from .truth import Truth


def identity_scores(matched: Sequence[tuple[Truth, Sequence[FrameMatch]]]) -> dict[str, Any] | None:
    """BCubed and pairwise scores over the clustered crops matched to a labelled identity, all
    sources together (clusters span sources); None when no truth carries identities. Track
    numbers of MOT or COCO files are told apart by source; people's names (YouTube Faces, the
    CSV) are not.

    Crops with no cluster are counted apart (``unclustered``), not scored: a crop that
    selection (``per_track``, ``dedupe``) dropped before embedding, or one the identity step
    left out as too small to tell, says nothing about how the clusters were made, and scoring it
    as a cluster of its own would report a perfect clustering as a poor one."""
    predicted, truth = [], []
    unclustered = 0
    for t, frames in matched:
        if not t.has_identities:
            continue
        for f in frames:
            for tb, r in f.pairs:
                if tb.identity is None:
                    continue
                if r.cluster is None:
                    unclustered += 1
                    continue
                predicted.append(r.cluster)
                truth.append(tb.identity if t.people else f"{t.key}/{tb.identity}")
    if not truth and not unclustered:
        return None
    return {"bcubed": bcubed(predicted, truth).to_json(),
            "pairwise": pairwise(predicted, truth).to_json(),
            "identities": len(set(truth)), "clusters": len(set(predicted)),
            "unclustered": unclustered}
