"""The per-source stages, in order: download -> sample -> detect -> crop -> identity (one module
each, each with a ``Stage`` object; ``base.py`` says what one is).

``STAGES`` is the one list the run, ``status``, ``plan`` and ``--force`` read: a new stage is a
new module and one entry here.
"""
from __future__ import annotations

from ..config.schema import Config
from . import crop, detect, download, identity, sample
from .base import Context, Produced, Stage

STAGES: tuple[Stage, ...] = (download.STAGE, sample.STAGE, detect.STAGE, crop.STAGE, identity.STAGE)
NAMES: tuple[str, ...] = tuple(s.name for s in STAGES)


def active(config: Config) -> tuple[Stage, ...]:
    """The stages this config runs, in order (``identity`` only when configured)."""
    return tuple(s for s in STAGES if s.enabled(config))


__all__ = ["NAMES", "STAGES", "Context", "Produced", "Stage", "active"]
