"""The resume rule, once: for one unit (stage, source), skip it, report it failed, or run it.

A run (``pipeline.runner.unit.process_video``) acts on the decision; ``status`` (and ``plan``, which
reads it) reports it, so what they say a run would do is what a run does.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from .markers import Marker, State

Action = Literal["skip", "failed", "run"]


@dataclass(frozen=True)
class Decision:
    action: Action
    marker: Marker | None = None  # when skipped: the finished unit's marker
    error: dict[str, Any] | None = None  # when failed: the failure recorded earlier


def plan_unit(state: State, stage: str, sid: str, fp: str | None, *, forced: bool = False,
              upstream_ran: bool = False, retry_failed: bool = False) -> Decision:
    """What to do with one unit whose fingerprint is ``fp``.

    ``fp`` is None when it is not known (an earlier stage is not done, or it cannot be
    computed): only a failure recorded without a fingerprint then matches. The unit is skipped
    when its marker matches ``fp`` and its outputs are intact (``State.is_done``), unless it is
    ``forced`` or an earlier stage of the source ran in this run (``upstream_ran``: its inputs
    were redone). A failure recorded for the same fingerprint is reported, not retried, unless
    ``retry_failed`` or forced: a removed video should not be asked for again on every resume.
    """
    redo = forced or upstream_ran
    marker = None if redo or fp is None else state.is_done(stage, sid, fp)
    if marker is not None:
        return Decision("skip", marker=marker)
    error = state.error(stage, sid)
    if error is not None and error.get("fingerprint") == (fp or "") and not (redo or retry_failed):
        return Decision("failed", error=error)
    return Decision("run")
