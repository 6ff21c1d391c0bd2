"""Track scores by py-motmetrics (the MOTChallenge definitions): IDF1, identity switches,
fragmentations, and how many of the run's tracks each labelled identity was split into.

Only the sampled frames are fed, in order, so a person the run saw in frames 0, 3 and 6 is
followed across those; the boxes motmetrics compares are the ones left once ignore regions and
what hit them are set aside (``matching.match_frame``), at IoU 0.5 as MOTChallenge scores.
"""
from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .matching import FrameMatch, iou

INSTALL = 'pip install -e ".[eval]"  (or pip install motmetrics)'
RATIOS = ("idf1", "idp", "idr", "mota")
COUNTS = ("num_switches", "num_fragmentations", "num_unique_objects", "mostly_tracked")
METRICS = RATIOS + COUNTS


def motmetrics():
    """The motmetrics module, or ImportError saying how to install it."""
    try:
        # lazy: optional dependency (the eval extra)
        import motmetrics as mm
    except ImportError:
        raise ImportError(f"track scores need motmetrics: {INSTALL}") from None
    return mm


@dataclass
class _Ids:
    """Small integers for string ids (motmetrics stores ids as floats)."""

    ids: dict[str, int]

    def __call__(self, key: str) -> int:
        return self.ids.setdefault(key, len(self.ids) + 1)


def accumulate(frames: Sequence[FrameMatch]):
    """A motmetrics accumulator of the frames' labelled and found boxes (distance 1 - IoU, none
    below IoU 0.5). Computed here: motmetrics 1.4's own iou_matrix needs NumPy < 2."""
    mm = motmetrics()
    acc = mm.MOTAccumulator(auto_id=False)
    truth_ids, run_ids = _Ids({}), _Ids({})
    for f in frames:
        truth = [t for t, _ in f.pairs] + list(f.missed)
        run = [r for _, r in f.pairs] + list(f.false)
        dist = np.array([[1 - v if (v := iou(t.box, r.box)) >= 0.5 else np.nan for r in run]
                         for t in truth], dtype=float).reshape(len(truth), len(run))
        acc.update([truth_ids(t.identity or "") for t in truth], [run_ids(r.track) for r in run],
                   dist, frameid=f.frame)
    return acc


def tracks_per_identity(acc) -> float | None:
    """Mean number of the run's tracks matched to each labelled identity the run found at all
    (1.0: every person followed by one track)."""
    events = acc.mot_events
    matched = events[events["Type"].isin(["MATCH", "SWITCH"])]
    per_identity = matched.groupby("OId")["HId"].nunique()
    return float(per_identity.mean()) if len(per_identity) else None


def track_scores(per_source: dict[str, Sequence[FrameMatch]]) -> dict[str, dict[str, Any]]:
    """Scores per source and ``overall`` (motmetrics' own overall: sums, not means)."""
    mm = motmetrics()
    names = list(per_source)
    accs = [accumulate(per_source[n]) for n in names]
    with warnings.catch_warnings():  # pandas deprecation notes from motmetrics' internals
        warnings.simplefilter("ignore")
        summary = mm.metrics.create().compute_many(accs, names=names, metrics=list(METRICS),
                                                   generate_overall=True)
        tpi = [tracks_per_identity(a) for a in accs]
    found = [(t, _found(a)) for t, a in zip(tpi, accs) if t is not None]
    overall_tpi = (sum(t * n for t, n in found) / sum(n for _, n in found)) if found else None
    out = {}
    for name, t in [*zip(names, tpi), ("OVERALL", overall_tpi)]:
        row = summary.loc[name]
        out["overall" if name == "OVERALL" else name] = {
            **{m: _plain(row[m], m in COUNTS) for m in METRICS},
            "tracks_per_identity": None if t is None else round(t, 3)}
    return out


def _found(acc) -> int:
    events = acc.mot_events
    return int(events[events["Type"].isin(["MATCH", "SWITCH"])]["OId"].nunique())


def _plain(v: Any, count: bool) -> float | int | None:
    v = float(v)
    if np.isnan(v):
        return None
    return int(v) if count else round(v, 4)
