"""Identity clusters against labelled identities: the crops that found a labelled box carry
that box's identity, and ``clusters`` scores the run's ``identity_cluster`` of those crops."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .clusters import bcubed, pairwise
from .matching import FrameMatch
from .truth import Truth


def identity_scores(matched: Sequence[tuple[Truth, Sequence[FrameMatch]]]) -> dict[str, Any] | None:
    """BCubed and pairwise scores over every crop matched to a labelled identity, all sources
    together (clusters span sources); None when no truth carries identities. Track numbers of
    MOT or COCO files are told apart by source; people's names (YouTube Faces, the CSV) are not."""
    predicted, truth = [], []
    for t, frames in matched:
        if not t.has_identities:
            continue
        for f in frames:
            for tb, r in f.pairs:
                if tb.identity is not None:
                    predicted.append(r.cluster)
                    truth.append(tb.identity if t.people else f"{t.key}/{tb.identity}")
    if not truth:
        return None
    return {"bcubed": bcubed(predicted, truth).to_json(),
            "pairwise": pairwise(predicted, truth).to_json(),
            "identities": len(set(truth)), "clusters": len({p for p in predicted if p is not None})}
