"""Which split (train, val, test) each source goes to: whole sources, by a seeded rank.
"""
from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ..core.layout import OutputLayout
from ..algo.quality import KEPT


SPLITS = ("train", "val", "test")


def _rank_key(seed: int, sid: str) -> str:
    return hashlib.sha256(f"{seed}:{sid}".encode()).hexdigest()


def split_counts(n: int, ratios: dict[str, float]) -> dict[str, int]:
    """How many of ``n`` sources each split gets: floors, then the largest remainders."""
    exact = {k: n * r for k, r in ratios.items()}
    counts = {k: int(v) for k, v in exact.items()}
    left = n - sum(counts.values())
    for k in sorted(exact, key=lambda k: (-(exact[k] - counts[k]), SPLITS.index(k)))[:left]:
        counts[k] += 1
    return counts


def empty_splits(rows: Iterable[dict[str, Any]], ratios: dict[str, float]) -> str | None:
    """The line naming the splits with a ratio above 0 that hold no crop in ``dataset/``, and why.

    Judged on what ``dataset/`` holds after every drop and reject (``rows``: all manifest rows,
    split assigned), not on the sources the splits were cut from: a split whose sources lost every
    crop to the quality filters, dedupe or a review is as empty to a user as one that got no
    source, and the two call for different fixes. Nothing is said when no crop is kept at all
    (the run's counts say so). Reported, not adjusted: filling the split would move sources away
    from the ratios the config asks for, and change the split of datasets already built.
    """
    sources: dict[str, set[str]] = {}
    kept: set[str] = set()
    for row in rows:
        sources.setdefault(row["split"], set()).add(row["source_id"])
        if row["status"] == KEPT:
            kept.add(row["split"])
    empty = [k for k, r in ratios.items() if kept and r > 0 and k not in kept]
    if not empty:
        return None
    n = sum(len(s) for s in sources.values())  # the sources the splits were cut from
    why = []
    unfilled = [k for k in empty if k not in sources]
    if unfilled:
        asked = ", ".join(f"{k} {ratios[k]:g} x {n} = {n * ratios[k]:.2g}" for k in unfilled)
        why.append(f"too few sources with crops, each whole in one split ({asked} of a source)")
    for k in empty:
        if k in sources:
            count = len(sources[k])
            why.append(f"every crop of the {count} {k} source{'s' if count > 1 else ''} was "
                       "rejected or dropped (the manifest's status column)")
    written = {k: 0.0 if k in empty else r for k, r in ratios.items()}
    written["train"] += 1.0 - sum(written.values())
    split_line = ", ".join(f"{k}: {r:g}" for k, r in written.items())
    return (f"split {' and '.join(empty)} {'is' if len(empty) == 1 else 'are'} empty: "
            f"{'; '.join(why)}; add sources, or write split: {{{split_line}}}")


def assign_splits(source_ids: Iterable[str], ratios: dict[str, float], seed: int = 0) -> dict[str, str]:
    """Every source (all its crops) goes to one split.

    Sources are ordered by a hash of (seed, source id) and cut at the split quotas, so the order
    never depends on which other sources exist: adding or removing a source moves at most the
    sources at the two cut points, and every crop of a video stays in one split (no leakage).
    """
    ordered = sorted(set(source_ids), key=lambda s: _rank_key(seed, s))
    counts = split_counts(len(ordered), ratios)
    out: dict[str, str] = {}
    i = 0
    for split in SPLITS:
        for sid in ordered[i:i + counts.get(split, 0)]:
            out[sid] = split
        i += counts.get(split, 0)
    return out


def assign_split(row: dict[str, Any], split: str) -> None:
    """Put a row into its split; a kept crop gets its ``dataset/<split>/<label>/`` file."""
    row["split"] = split
    if row["status"] == KEPT:
        # a kept crop always has its file (only the crop stage's drops have none)
        row["dataset_file"] = OutputLayout.dataset_file_rel(split, row["label"], Path(row["file"]).name)
