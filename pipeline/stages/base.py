"""What a per-source stage is to the orchestration: a name, a version, a fingerprint and a run.

``pipeline.runner.unit`` and ``pipeline.runner.status`` loop over ``pipeline.stages.STAGES`` and know
nothing else about a stage: a new stage is one module with one ``Stage`` object, added to that
list. A stage's own functions keep the parameters natural to it (``sample.run`` takes the parts
the download left); its ``Stage`` object is where those are picked from the context and the
earlier stages' results.

One pass may stand in for several stages' ``run``: when sample runs, ``pipeline.stages.overlapped``
yields the sample, detect and crop stages' ``Produced`` in turn from one pipeline over the frames
(the same outputs, finished in the same order), built from the per-frame functions the three
modules share with their own ``run``.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from ..config.schema import Config
from ..core.records import Video

Produced = tuple[list[str], dict[str, Any]]
"""What a stage's run returns: its outputs (paths relative to the output folder, each checked on
resume) and the result its marker records (read again by later stages, ``status`` and the run)."""


@dataclass(frozen=True)
class Context:
    """What every stage of one unit (one video) is run with."""

    video: Video
    config: Config
    root: Path  # the output folder, absolute; outputs are recorded relative to it
    progress: bool = False  # draw progress bars (only when the unit runs in this process)


class Stage(Protocol):
    """One per-source stage. ``fingerprint`` and ``run`` may raise: the unit is then recorded
    as failed at this stage."""

    name: str  # its folder under ``state/`` and its name in ``--force``, ``status``, summaries
    version: str  # part of the fingerprint: bumping it redoes this stage and the later ones

    def enabled(self, config: Config) -> bool:
        """Whether this config runs the stage (a disabled stage is not looped over at all)."""
        ...

    def fingerprint(self, ctx: Context, upstream: str) -> str:
        """What the stage's outputs depend on, given the previous stage's fingerprint."""
        ...

    def run(self, ctx: Context, inputs: Mapping[str, dict[str, Any]]) -> Produced:
        """Write the outputs; ``inputs`` holds the marker results of the earlier stages."""
        ...


class AlwaysOn:
    """For the stages every config runs."""

    def enabled(self, config: Config) -> bool:
        return True


def _always(config: Config) -> bool:
    return True


@dataclass(frozen=True)
class ConfigStage:
    """A stage whose fingerprint depends on the config and upstream alone and whose run needs no
    earlier result (it reads the files the earlier stages wrote): detect, crop, identity."""

    name: str
    version: str
    fingerprint_of: Callable[[Config, str], str]
    run_unit: Callable[[Video, Config, Path, bool], Produced]
    when: Callable[[Config], bool] = _always

    def enabled(self, config: Config) -> bool:
        return self.when(config)

    def fingerprint(self, ctx: Context, upstream: str) -> str:
        return self.fingerprint_of(ctx.config, upstream)

    def run(self, ctx: Context, inputs: Mapping[str, dict[str, Any]]) -> Produced:
        return self.run_unit(ctx.video, ctx.config, ctx.root, ctx.progress)
