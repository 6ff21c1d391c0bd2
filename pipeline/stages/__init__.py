"""The per-source stages, in order: download -> sample -> detect -> crop -> identity (one module
each, each with a ``Stage`` object and its result dataclass; ``base.py`` says what one is).

``STAGES`` is the one list the run, ``status``, ``plan`` and ``--force`` read: a new stage is a
new module and one entry here. ``FUSED`` declares the stages that run as one pass where that
gives the same outputs (``overlapped.py``); the runner asks it, and names no stage.
"""
from __future__ import annotations

from ..config.schema import Config
from . import crop, detect, download, identity, overlapped, sample
from .base import Context, Fused, Produced, Result, Results, Stage

STAGES: tuple[Stage, ...] = (download.STAGE, sample.STAGE, detect.STAGE, crop.STAGE, identity.STAGE)
NAMES: tuple[str, ...] = tuple(s.name for s in STAGES)
FIRST: str = NAMES[0]
"""The stage a ``sources`` entry that could not be listed fails at (under its own id)."""

FUSED = Fused(covers=(sample.STAGE, detect.STAGE, crop.STAGE), applicable=overlapped.applicable,
              run=overlapped.run)


def active(config: Config) -> tuple[Stage, ...]:
    """The stages this config runs, in order (``identity`` only when configured)."""
    return tuple(s for s in STAGES if s.enabled(config))


__all__ = ["FIRST", "FUSED", "NAMES", "STAGES", "Context", "Fused", "Produced", "Result", "Results",
           "Stage", "active"]
