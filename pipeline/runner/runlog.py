"""The run's log: one line per unit of work (stage, source, what happened, seconds, counts).

A long unattended run can be read afterwards from ``--log FILE`` (appended to, so resumed runs
follow each other), or watched with ``-v``. The lines are written in the main process as each
source's outcome comes back, so they are the same whatever executor ran the units.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

log = logging.getLogger("pipeline.run")

# The counts of a source's outcome that each stage produced (a stage not listed adds none).
STAGE_COUNTS = {"download": (), "sample": ("frames", "dropped_blurry"), "detect": ("detections",),
                "crop": ("crops",)}
FILE_FORMAT = "%(asctime)s %(levelname)s %(message)s"


def unit_lines(outcome: Any) -> list[tuple[int, str]]:
    """(level, text) per stage of one source's outcome, in stage order."""
    lines = []
    for stage, how in outcome.stages.items():
        if how == "failed":
            lines.append((logging.WARNING, f"{stage} {outcome.sid} failed "
                                           f"[{outcome.error_class}] {outcome.message}"))
            continue
        text = f"{stage} {outcome.sid} {how}"
        if how == "ran":
            text += f" {outcome.seconds.get(stage, 0.0):.2f} s"
        counts = " ".join(f"{k}={outcome.counts[k]}" for k in STAGE_COUNTS.get(stage, ())
                          if k in outcome.counts)
        lines.append((logging.INFO, f"{text} {counts}{overlap_note(stage, how, outcome.busy)}".rstrip()))
    return lines


def overlap_note(stage: str, how: str, busy: dict[str, float]) -> str:
    """Where the time went when sample, detect and crop ran together: the sample stage's seconds
    are the three's wall time, so its line splits them into each thread's busy seconds (they
    overlap, so they add up to more than the wall time), and detect's and crop's lines say so."""
    if not busy or how != "ran":
        return ""
    if stage == "sample":
        steps = ", ".join(f"{step} {seconds:.2f} s" for step, seconds in busy.items())
        return f" (with detect and crop; busy: {steps})"
    return " (done during sample)" if stage in ("detect", "crop") else ""


def log_outcome(outcome: Any) -> None:
    for level, text in unit_lines(outcome):
        log.log(level, text)


def configure(verbosity: int = 0, log_file: Path | None = None) -> None:
    """Console: warnings, ``-v`` the unit lines, ``-vv`` debugging too. ``log_file``: the unit
    lines (and everything above) with a timestamp, appended."""
    root = logging.getLogger()
    level = logging.WARNING if verbosity <= 0 else logging.INFO if verbosity == 1 else logging.DEBUG
    for handler in root.handlers:
        handler.setLevel(level)
    root.setLevel(min(level, logging.INFO) if log_file is not None else level)
    if log_file is not None:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        handler = logging.FileHandler(log_file, mode="a", encoding="utf-8")
        handler.setLevel(min(level, logging.INFO))
        handler.setFormatter(logging.Formatter(FILE_FORMAT, "%Y-%m-%d %H:%M:%S"))
        root.addHandler(handler)


def shown_on_console(level: int) -> bool:
    """Whether a line of ``level`` reaches the terminal (``-v`` shows INFO), not only a log file."""
    return any(type(h) is logging.StreamHandler and h.level <= level and log.isEnabledFor(level)
               for h in logging.getLogger().handlers)
