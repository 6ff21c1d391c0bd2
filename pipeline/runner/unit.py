"""One unit of work: one source through the stages (``STAGES``), each skipped, run or failed by
the resume rule, with its marker written last.

``process_video`` is a plain function of its inputs that reads and writes files, so an executor
(a process pool, Ray tasks) only maps it.
"""
from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import ExitStack, closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..config.schema import Config
from ..core.errors import error_record, unwritable_output
from ..core.records import Video
from ..exec.cpus import limit_native_threads, threads_for
from ..sources.expand import Expansion
from ..stages import Context, Produced, active, overlapped
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
    counts: dict[str, int] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)  # stage -> time spent in this run
    busy: dict[str, float] = field(default_factory=dict)  # overlapped step -> its thread's busy seconds

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

    When the sample stage runs, detect and crop run with it as one overlapped pipeline
    (``pipeline.stages.overlapped``) wherever that gives the same outputs; each stage still
    renames its outputs into place, and gets its marker, in turn.
    """
    limit_native_threads(threads_for(config))  # before this process loads a detector
    with ExitStack() as cleanup:
        return _process(video, config, root, force, retry_failed, progress, cleanup)


def _process(video: Video, config: Config, root: Path, force: frozenset[str], retry_failed: bool,
             progress: bool, cleanup: ExitStack) -> SourceOutcome:
    state = State(root)
    outcome = SourceOutcome(video.sid, video.title)
    ctx = Context(video, config, root, progress)
    results: dict[str, Any] = {}
    upstream = ""
    ran = False  # an earlier stage of this source ran: the later ones are redone
    together: Iterator[Produced] | None = None  # sample, detect and crop overlapped
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
        marker = decision.marker
        if marker is None:
            state.invalidate(stage.name, video.sid)
            started = time.monotonic()
            try:
                if stage.name == "sample" and overlapped.applicable(ctx, results):
                    together = cleanup.enter_context(closing(overlapped.run(ctx, results)))
                if together is not None and stage.name in overlapped.STAGES:
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
            marker = Marker(fp, outputs, result, round(time.monotonic() - started, 3))
            state.finish(stage.name, video.sid, marker)
            outcome.stages[stage.name] = "ran"
            outcome.seconds[stage.name] = marker.seconds
            outcome.busy.update(result.get("overlapped", {}).get("busy_s", {}))
            ran = True
        else:
            outcome.stages[stage.name] = "skipped"
        results[stage.name] = marker.result
        upstream = fp
    outcome.detector = results["detect"].get("detector")
    outcome.counts = {"frames": results["sample"].get("frames", 0),
                      "dropped_blurry": results["sample"].get("dropped_blurry", 0),
                      "detections": results["detect"].get("detections", 0),
                      "crops": results["crop"].get("crops", 0)}
    if not outcome.title:
        outcome.title = results["download"].get("info", {}).get("title")
    return outcome


def _failed(outcome: SourceOutcome, state: State, stage: str, video: Video, exc: BaseException,
            fp: str) -> SourceOutcome:
    record = {**error_record(exc, stage), "fingerprint": fp, "location": video.location}
    state.fail(stage, video.sid, record)
    outcome.stages[stage] = "failed"
    outcome.failed_stage, outcome.error_class, outcome.message = stage, record["class"], record["message"]
    return outcome


def expansion_failures(expansion: Expansion, state: State) -> list[SourceOutcome]:
    """Config entries that could not even be listed fail as a 'download' of their own id."""
    outcomes = []
    for sid, index, kind, message in expansion.failures:
        state.fail("download", sid, {"stage": "download", "class": kind, "message": message,
                                     "fingerprint": "", "entry": index})
        outcomes.append(SourceOutcome(sid, f"sources.{index}", {"download": "failed"}, "download",
                                      kind, message))
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
