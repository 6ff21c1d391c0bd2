"""``python -m pipeline status``: per stage, which sources are done, failed or pending, read from
the markers alone (no network: a playlist not listed yet is said to be so)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config.schema import Config
from ..sources.expand import expand_sources
from ..stages import Context, active
from ..state.lock import RunLock
from ..state.markers import State
from ..state.resume import plan_unit
from .unit import active_stages


class NotListedYet(LookupError):
    """A URL entry whose videos have not been listed by a run yet (status never goes online)."""


def offline_expander(url: str, _options: dict) -> list[dict[str, str]]:
    raise NotListedYet(f"{url}: not listed yet (a run lists its videos)")


@dataclass
class StatusReport:
    """Per stage, the source ids that are done, failed (with why) and pending."""

    stages: dict[str, dict[str, list]]
    unlisted: list[str]
    failures: list[tuple[str, int, str, str]]
    final_step: str | None = None
    """``running`` or ``unfinished`` when the last step (dataset, manifest, sheets) is not done."""
    running: dict[str, Any] | None = None
    """The run that holds the output folder now (pid, host, started), if any."""
    sources: int = 0


def status(config: Config) -> StatusReport:
    """What a run would skip, retry or do, from the markers alone (no network, no lock)."""
    root = config.output_dir
    state = State(root)
    expansion = expand_sources(config, state, expander=offline_expander)
    failures, unlisted = [], []
    for sid, index, kind, message in expansion.failures:
        listing = state.error("download", sid) if "not listed yet" in message else None
        if listing is not None:  # a run tried to list it and failed: a failure, as run reported
            failures.append((sid, index, listing.get("class"), listing.get("message")))
        elif "not listed yet" in message:
            unlisted.append(message.split(": ")[0])
        else:
            failures.append((sid, index, kind, message))
    stages: dict[str, dict[str, list]] = {s: {"done": [], "failed": [], "pending": []}
                                          for s in active_stages(config)}
    for video in expansion.videos:
        ctx = Context(video, config, root.absolute())
        upstream: str | None = ""  # None: an earlier stage is not done, so neither is this one
        for stage in active(config):
            try:
                fp = None if upstream is None else stage.fingerprint(ctx, upstream)
            except Exception:
                fp = None
            decision = plan_unit(state, stage.name, video.sid, fp)
            groups = stages[stage.name]
            if decision.action == "skip":
                groups["done"].append(video.sid)
            elif decision.action == "failed":
                error = decision.error or {}
                groups["failed"].append((video.sid, error.get("class"), error.get("message")))
            else:
                groups["pending"].append(video.sid)
            upstream = fp if decision.action == "skip" else None
    for sid, _, kind, message in failures:
        stages["download"]["failed"].append((sid, kind, message))
    return StatusReport(stages, unlisted, failures, final_step_of(state, root),
                        RunLock(root).holder(), len(expansion.videos))


def final_step_of(state: State, root: Path) -> str | None:
    """Whether the last step is ``running`` (its run holds the lock) or ``unfinished`` (its run
    was killed or stopped), else None."""
    if not state.final_step_unfinished():
        return None
    holder = RunLock(root).holder() or {}
    return "running" if holder and holder.get("command", "run") == "run" else "unfinished"
