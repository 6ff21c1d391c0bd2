"""``python -m pipeline status``: per stage, which sources are done, failed or pending, read from
the markers alone (no network: a playlist not listed yet is said to be so)."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..config.schema import Config
from ..core.delivered import Delivered, from_summary
from ..core.errors import NOT_LISTED, NotListedYet
from ..io.files import read_json_object
from ..sources.blocked import blocked_hosts
from ..sources.expand import SourceFailure, expand_sources
from ..stages import FIRST, Context, active
from ..state.lock import RunLock
from ..state.markers import State
from ..state.resume import plan_unit
from .unit import active_stages


def offline_expander(url: str, _options: dict, _filter: Any = None) -> list[dict[str, str]]:
    raise NotListedYet(f"{url}: not listed yet (a run lists its videos)")


@dataclass
class StatusReport:
    """Per stage, the source ids that are done, failed (with why) and pending."""

    stages: dict[str, dict[str, list]]
    unlisted: list[str]
    failures: list[SourceFailure]
    final_step: str | None = None
    """``running`` or ``unfinished`` when the last step (dataset, manifest, sheets) is not done."""
    running: dict[str, Any] | None = None
    """The run that holds the output folder now (pid, host, started), if any."""
    sources: int = 0
    blocked_hosts: list[str] = field(default_factory=list)
    """Hosts whose bot checks or HTTP 429 failed sources (``pipeline.sources.blocked``)."""
    counts: dict[str, dict[str, int]] = field(default_factory=dict)
    """Per stage, its results' counts (``Result.counts``) summed over the sources it is done for."""
    delivered: Delivered | None = None
    """What ``dataset/`` holds, from the summary.json of the last finished run."""
    interrupted: dict[str, Any] | None = None
    """How the last run was stopped when it did not finish: by a signal (``signal``, ``at``:
    ``State.note_interrupt``), or killed (``pid``, ``host``, ``started``: the lock it left)."""
    stopped_in: list[tuple[str, str]] = field(default_factory=list)
    """(stage, source id) of the sources an earlier stage is done for and this one not: where
    an interrupted run stopped."""


def status(config: Config) -> StatusReport:
    """What a run would skip, retry or do, from the markers alone (no network, no lock)."""
    root = config.output_dir
    state = State(root)
    expansion = expand_sources(config, state, expander=offline_expander)
    failures: list[SourceFailure] = []
    unlisted: list[str] = []
    for failure in expansion.failures:
        if failure.kind != NOT_LISTED:
            failures.append(failure)
            continue
        listing = state.error(FIRST, failure.sid)
        if listing is not None:  # a run tried to list it and failed: a failure, as run reported
            failures.append(failure._replace(kind=str(listing.get("class")),
                                             message=str(listing.get("message"))))
        else:
            unlisted.append(failure.message.split(": ")[0])
    stages: dict[str, dict[str, list]] = {s: {"done": [], "failed": [], "pending": []}
                                          for s in active_stages(config)}
    counts: dict[str, dict[str, int]] = {}
    stopped_in: list[tuple[str, str]] = []
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
                result = stage.read(decision.marker.result) if decision.marker else None
                _add(counts.setdefault(stage.name, {}), result.counts() if result else {})
            elif decision.action == "failed":
                error = decision.error or {}
                groups["failed"].append((video.sid, error.get("class"), error.get("message")))
            else:
                groups["pending"].append(video.sid)
                if upstream:  # the stage before is done: the source is part way through
                    stopped_in.append((stage.name, video.sid))
            upstream = fp if decision.action == "skip" else None
    for failure in failures:
        stages[FIRST]["failed"].append((failure.sid, failure.kind, failure.message))
    failed = [(sid, kind) for groups in stages.values() for sid, kind, _ in groups["failed"]]
    return StatusReport(stages, unlisted, failures, final_step_of(state, root),
                        RunLock(root).holder(), len(expansion.videos),
                        blocked_hosts=blocked_hosts(expansion.locations(config), failed), counts=counts,
                        delivered=from_summary(read_json_object(state.layout.summary) or {}),
                        interrupted=state.interruption() or _killed_run(root),
                        stopped_in=stopped_in)


def _killed_run(root: Path) -> dict[str, Any] | None:
    """The lock a ``run`` left when it was killed (an export or a sheet killed is no run)."""
    owner = RunLock(root).left_by_dead()
    return owner if owner is not None and owner.get("command", "run") == "run" else None


def _add(total: dict[str, int], counts: dict[str, int]) -> None:
    for name, n in counts.items():
        total[name] = total.get(name, 0) + n


def final_step_of(state: State, root: Path) -> str | None:
    """Whether the last step is ``running`` (its run holds the lock) or ``unfinished`` (its run
    was killed or stopped), else None."""
    if not state.final_step_unfinished():
        return None
    holder = RunLock(root).holder() or {}
    return "running" if holder and holder.get("command", "run") == "run" else "unfinished"
