"""Which split (train, val, test) each source goes to: whole sources, by a seeded rank.
"""
from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

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


def empty_splits(n: int, ratios: dict[str, float]) -> str | None:
    """The line naming the splits with a ratio above 0 that ``n`` sources leave empty, and why.

    Reported, not adjusted: filling the split would move sources away from the ratios the config
    asks for, and change the split of datasets already built.
    """
    counts = split_counts(n, ratios)
    empty = [k for k, r in ratios.items() if n and r > 0 and counts[k] == 0]
    if not empty:
        return None
    asked = ", ".join(f"{k} {ratios[k]:g} x {n} = {n * ratios[k]:.2g}" for k in empty)
    kept = {k: 0.0 if k in empty else r for k, r in ratios.items()}
    kept["train"] += 1.0 - sum(kept.values())
    written = ", ".join(f"{k}: {r:g}" for k, r in kept.items())
    return (f"split {' and '.join(empty)} {'is' if len(empty) == 1 else 'are'} empty: too few "
            f"sources with crops, each whole in one split ({asked} of a source); add sources, "
            f"or write split: {{{written}}}")


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
        name = Path(row["file"]).name if row.get("file") else None
        row["dataset_file"] = f"dataset/{split}/{row['label']}/{name}"
