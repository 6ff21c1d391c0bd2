"""The per-source stages, in order: download -> sample -> detect -> crop -> identity (one module
each, each with a ``Stage`` object and its result dataclass; ``base.py`` says what one is).

``STAGES`` is the one list the run, ``status``, ``plan`` and ``--force`` read: a new stage is a
new module and one entry here (``plan`` takes the stages by the unit their work is measured in,
``measured_in``). ``FUSED`` declares the stages that run as one pass where that gives the same
outputs (``overlapped.py``); the runner asks it, and names no stage.
"""
from __future__ import annotations

from ..config.schema import Config
from . import crop, detect, download, identity, overlapped, sample
from .base import DOWNLOADS, FACES, FRAMES, Context, Fused, Produced, Rate, Result, Results, Stage

STAGES: tuple[Stage, ...] = (download.STAGE, sample.STAGE, detect.STAGE, crop.STAGE, identity.STAGE)
NAMES: tuple[str, ...] = tuple(s.name for s in STAGES)
FIRST: str = NAMES[0]
"""The stage a ``sources`` entry that could not be listed fails at (under its own id)."""

FUSED = Fused(covers=(sample.STAGE, detect.STAGE, crop.STAGE), applicable=overlapped.applicable,
              run=overlapped.run)


def active(config: Config) -> tuple[Stage, ...]:
    """The stages this config runs, in order (``identity`` only when configured)."""
    return tuple(s for s in STAGES if s.enabled(config))


def measured_in(config: Config, unit: str) -> tuple[Stage, ...]:
    """The stages this config runs whose work ``plan`` measures in ``unit`` (``Stage.work``)."""
    return tuple(s for s in active(config) if s.work == unit)


__all__ = ["DOWNLOADS", "FACES", "FIRST", "FRAMES", "FUSED", "NAMES", "STAGES", "Context", "Fused",
           "Produced", "Rate", "Result", "Results", "Stage", "active", "measured_in"]
