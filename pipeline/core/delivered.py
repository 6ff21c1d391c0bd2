"""What ``dataset/`` holds after a run: the record ``run`` ends with and ``status`` says again
from ``summary.json``, so both print it from one record in the same words."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Delivered:
    """The crops in ``dataset/`` (``kept``), per label and split, and those left out."""

    kept: int
    per_label: dict[str, int]
    per_split: dict[str, int]
    rejected: int
    rejects_file: Path | str | None = None
    dropped: dict[str, int] = field(default_factory=dict)  # reason -> crops
    finished_at: str = ""  # when the run that built it finished; empty for the run printing it


def from_summary(summary: dict[str, Any]) -> Delivered | None:
    """The record in a ``summary.json``; None when it lacks it or has it in another shape (an
    older version's, a hand-edited file): ``status`` then leaves the line out."""
    crops, rejects = summary.get("crops"), summary.get("rejects")
    if not isinstance(crops, dict):
        return None
    maps = [crops.get("per_label"), crops.get("per_split"), crops.get("dropped_by_reason", {})]
    counts = [crops.get("kept"), crops.get("rejected"),
              *(n for m in maps if isinstance(m, dict) for n in m.values())]
    if not all(isinstance(m, dict) for m in maps) or not all(type(n) is int for n in counts):
        return None
    file = rejects.get("file") if isinstance(rejects, dict) else None
    return Delivered(crops["kept"], maps[0], maps[1], crops["rejected"],
                     file if isinstance(file, str) else None, maps[2], str(summary.get("finished_at", "")))
