"""One unit of work: one source through the stages (``STAGES``), each skipped, run or failed by
the resume rule, with its marker written last.

``process_video`` is a plain function of its inputs that reads and writes files, so an executor
(a process pool, Ray tasks) only maps it.
"""
from __future__ import annotations

import time
from collections.abc import Generator
from contextlib import ExitStack, closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..config.schema import Config
from ..core.errors import error_record, unwritable_output
from ..core.records import Video
from ..exec.cpus import limit_native_threads, threads_for
from ..sources.expand import Expansion
from ..stages import FIRST, FUSED, Context, Produced, Results, active
from ..state.markers import Marker, State
from ..state.resume import plan_unit


@dataclass
class SourceOutcome:
    """How one video fared in this run."""

    sid: str
    title: str | None
    stages: dict[str, str] = field(default_factory=dict)  # stage -> ran | skipped | failed
    failed_stage: str | None = None
    error_class: str | None = None
    message: str | None = None
    detector: str | None = None
    counts: dict[str, int] = field(default_factory=dict)  # every stage's counts, in stage order
    stage_counts: dict[str, dict[str, int]] = field(default_factory=dict)  # stage -> its counts
    # stage -> the seconds its work took: this run's, or for a skipped stage those its marker
    # recorded (summary.json's stage_seconds then says the work's time after a no-op rerun too)
    seconds: dict[str, float] = field(default_factory=dict)
    busy: dict[str, float] = field(default_factory=dict)  # fused step -> its thread's busy seconds
    fused: tuple[str, ...] = ()  # the stages that ran as one pass (``FUSED``), if any

    @property
    def ok(self) -> bool:
        return self.failed_stage is None


def active_stages(config: Config) -> tuple[str, ...]:
    """The names of the stages this config runs (``identity`` only when configured)."""
    return tuple(s.name for s in active(config))


def process_video(video: Video, config: Config, root: Path, force: frozenset[str] = frozenset(),
                  retry_failed: bool = False, progress: bool = False) -> SourceOutcome:
    """Run the stages a video still needs; skip the ones whose marker matches.

    ``pipeline.state.resume.plan_unit`` decides each stage: forcing a stage forces every later one
    (their inputs are redone), and so does a stage that ran because its outputs were missing or
    damaged; a unit recorded as failed for the same fingerprint is not retried unless
    ``retry_failed``.

    When the first stage of ``pipeline.stages.FUSED`` runs, the stages it covers (sample,
    detect, crop) run as one pass wherever that gives the same outputs; each stage still renames
    its outputs into place, and gets its marker, in turn. Each stage is handed the earlier
    stages' results by type; a skipped stage's result is read back from its marker.
    """
    limit_native_threads(threads_for(config))  # before this process loads a detector
    with ExitStack() as cleanup:
        return _process(video, config, root, force, retry_failed, progress, cleanup)


def _process(video: Video, config: Config, root: Path, force: frozenset[str], retry_failed: bool,
             progress: bool, cleanup: ExitStack) -> SourceOutcome:
    state = State(root)
    outcome = SourceOutcome(video.sid, video.title)
    ctx = Context(video, config, root, progress)
    results = Results()
    upstream = ""
    ran = False  # an earlier stage of this source ran: the later ones are redone
    together: Generator[Produced[Any], None, None] | None = None  # the fused stages, run as one pass
    counts: dict[str, dict[str, int]] = {}
    for stage in active(config):
        try:
            fp = stage.fingerprint(ctx, upstream)
        except Exception as exc:  # e.g. a local file gone, a detector that cannot load
            return _failed(outcome, state, stage.name, video, exc, "")
        decision = plan_unit(state, stage.name, video.sid, fp, forced=stage.name in force,
                             upstream_ran=ran, retry_failed=retry_failed)
        if decision.action == "failed":
            previous = decision.error or {}
            outcome.stages[stage.name] = "failed"
            outcome.failed_stage, outcome.error_class = stage.name, previous.get("class")
            outcome.message = previous.get("message", "") + " (recorded earlier; --retry-failed retries it)"
            return outcome
        # a marker whose result cannot be read (hand-edited, damaged) is redone, as a missing one
        recorded = stage.read(decision.marker.result) if decision.marker is not None else None
        if recorded is None or decision.marker is None:
            state.invalidate(stage.name, video.sid)
            started = time.monotonic()
            try:
                if FUSED.starts_at(stage) and FUSED.applicable(ctx, results):
                    together = cleanup.enter_context(closing(FUSED.run(ctx, results)))
                    outcome.fused = tuple(s.name for s in FUSED.covers)
                if together is not None and FUSED.includes(stage):
                    outputs, result = next(together)
                else:
                    outputs, result = stage.run(ctx, results)
            except Exception as exc:
                state.discard_partial(video.sid)
                fatal = unwritable_output(exc, root)
                if fatal is not None:
                    raise fatal from exc
                return _failed(outcome, state, stage.name, video, exc, fp)
            except BaseException:  # Ctrl-C: leave no half-written folder behind
                state.discard_partial(video.sid)
                raise
            marker = Marker(fp, outputs, result.to_json(), round(time.monotonic() - started, 3))
            state.finish(stage.name, video.sid, marker)
            outcome.stages[stage.name] = "ran"
            outcome.seconds[stage.name] = marker.seconds
            outcome.busy.update(result.busy())
            ran = True
        else:
            outcome.stages[stage.name] = "skipped"
            outcome.seconds[stage.name] = decision.marker.seconds
            result = recorded
        results.add(result)
        counts[stage.name] = result.counts()
        upstream = fp
    outcome.stage_counts = counts  # only a source through every stage reports counts
    facts = {k: v for r in results for k, v in r.facts().items()}
    outcome.detector = facts.get("detector")
    outcome.counts = {k: n for of_stage in counts.values() for k, n in of_stage.items()}
    if not outcome.title:
        outcome.title = facts.get("title")
    return outcome


def _failed(outcome: SourceOutcome, state: State, stage: str, video: Video, exc: BaseException,
            fp: str) -> SourceOutcome:
    record = {**error_record(exc, stage), "fingerprint": fp, "location": video.location}
    state.fail(stage, video.sid, record)
    outcome.stages[stage] = "failed"
    outcome.failed_stage, outcome.error_class, outcome.message = stage, record["class"], record["message"]
    return outcome


def expansion_failures(expansion: Expansion, state: State) -> list[SourceOutcome]:
    """Config entries that could not even be listed fail at the first stage, under their own id."""
    outcomes = []
    for f in expansion.failures:
        state.fail(FIRST, f.sid, {"stage": FIRST, "class": f.kind, "message": f.message,
                                  "fingerprint": "", "entry": f.entry})
        outcomes.append(SourceOutcome(f.sid, f"sources.{f.entry}", {FIRST: "failed"}, FIRST,
                                      f.kind, f.message))
    return outcomes


WORKER_LOST = "worker-lost"


def lost_outcome(root: Path, config: Config, video: Video, exc: BaseException) -> SourceOutcome:
    """A unit whose worker (process or node) died more often than the executor retries it.

    It is not recorded as failed: its finished stages are kept and the next run redoes the rest,
    as after a crash.
    """
    state = State(root)
    stages = active_stages(config)
    stage = next((s for s in stages if state.read(s, video.sid) is None), stages[-1])
    return SourceOutcome(video.sid, video.title, {stage: "failed"}, stage, WORKER_LOST,
                         f"its worker died and the retries (executor.max_retries) ran out "
                         f"({type(exc).__name__}); finished stages are kept, the next run redoes "
                         "the rest")
