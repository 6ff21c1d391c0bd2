"""The orchestration: every video through download -> sample -> detect -> crop, then the global steps.

``run()`` is the library entry point the CLI wraps; a notebook user can call it directly. A unit
of work is ``process_video(video, config, root, ...)``: a plain function of its inputs that reads
and writes files, so the executor (``pipeline.executors``: inline or a process pool of ``workers``,
or Ray tasks) only maps it; nothing here or in the stages depends on which one runs it.
"""
from __future__ import annotations

import time
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

from . import progress
from .config import Config
from .dataset import DatasetReport, build_dataset, rejects_file_for, write_summary
from .errors import error_record, unwritable_output
from .executors import check_available, open_executor
from .runlog import log as run_log, log_outcome
from .sources import Expansion, Video, cap_per_source, expand_sources
from .stages import crop, detect, download, sample
from .state import STAGES, Marker, RunLock, State


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

    @property
    def ok(self) -> bool:
        return self.failed_stage is None


@dataclass
class RunReport:
    root: Path
    outcomes: list[SourceOutcome]
    dataset: DatasetReport | None
    seconds: float
    interrupted: bool = False
    sheets: Any = None  # pipeline.sheet.SheetReport, None when not built

    @property
    def failed(self) -> list[SourceOutcome]:
        return [o for o in self.outcomes if not o.ok]

    @property
    def exit_code(self) -> int:
        """0 all sources done, 1 some failed (DESIGN's exit codes; 2 is the CLI's usage error)."""
        if self.interrupted:
            return 130
        return 1 if self.failed else 0


def stage_fingerprints(video: Video, config: Config) -> Iterable[tuple[str, Callable[[str], str]]]:
    """Each stage with a function of the upstream fingerprint that gives its own."""
    yield "download", lambda _up: download.stage_fingerprint(video, config)
    yield "sample", lambda up: sample.stage_fingerprint(video, config, up)
    yield "detect", lambda up: detect.stage_fingerprint(config, up)
    yield "crop", lambda up: crop.stage_fingerprint(config, up)


def _run_stage(stage: str, video: Video, config: Config, root: Path, results: dict[str, Any],
               progress: bool) -> tuple[list[str], dict[str, Any]]:
    if stage == "download":
        return download.run(video, config, root, progress)
    if stage == "sample":
        return sample.run(video, config, root, results["download"]["parts"], progress)
    if stage == "detect":
        return detect.run(video, config, root, progress)
    return crop.run(video, config, root, progress)


def process_video(video: Video, config: Config, root: Path, force: frozenset[str] = frozenset(),
                  retry_failed: bool = False, progress: bool = False) -> SourceOutcome:
    """Run the stages a video still needs; skip the ones whose marker matches.

    Forcing a stage forces every later one (their inputs are redone). A unit recorded as failed
    for the same fingerprint is not retried unless ``retry_failed``: a removed video should not be
    asked for again on every resume.
    """
    state = State(root)
    outcome = SourceOutcome(video.sid, video.title)
    results: dict[str, Any] = {}
    upstream = ""
    forced = False
    for stage, fp_of in stage_fingerprints(video, config):
        forced = forced or stage in force
        try:
            fp = fp_of(upstream)
        except Exception as exc:  # e.g. a local file gone, a detector that cannot load
            return _failed(outcome, state, stage, video, exc, "")
        marker = None if forced else state.is_done(stage, video.sid, fp)
        if marker is not None:
            outcome.stages[stage] = "skipped"
        else:
            previous = state.error(stage, video.sid)
            if previous and previous.get("fingerprint") == fp and not (retry_failed or forced):
                outcome.stages[stage] = "failed"
                outcome.failed_stage, outcome.error_class = stage, previous.get("class")
                outcome.message = previous.get("message", "") + " (recorded earlier; --retry-failed retries it)"
                return outcome
            state.invalidate(stage, video.sid)
            started = time.monotonic()
            try:
                outputs, result = _run_stage(stage, video, config, root, results, progress)
            except Exception as exc:
                state.discard_partial(video.sid)
                fatal = unwritable_output(exc, root)
                if fatal is not None:
                    raise fatal from exc
                return _failed(outcome, state, stage, video, exc, fp)
            except BaseException:  # Ctrl-C: leave no half-written folder behind
                state.discard_partial(video.sid)
                raise
            marker = Marker(fp, outputs, result, round(time.monotonic() - started, 3))
            state.finish(stage, video.sid, marker)
            outcome.stages[stage] = "ran"
            outcome.seconds[stage] = marker.seconds
        results[stage] = marker.result
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


def _expansion_failures(expansion: Expansion, state: State) -> list[SourceOutcome]:
    """Config entries that could not even be listed fail as a 'download' of their own id."""
    outcomes = []
    for sid, index, kind, message in expansion.failures:
        state.fail("download", sid, {"stage": "download", "class": kind, "message": message,
                                     "fingerprint": "", "entry": index})
        outcomes.append(SourceOutcome(sid, f"sources.{index}", {"download": "failed"}, "download",
                                      kind, message))
    return outcomes


WORKER_LOST = "worker-lost"


def _lost_outcome(root: Path, video: Video, exc: BaseException) -> SourceOutcome:
    """A unit whose worker (process or node) died more often than the executor retries it.

    It is not recorded as failed: its finished stages are kept and the next run redoes the rest,
    as after a crash.
    """
    state = State(root)
    stage = next((s for s in STAGES if state.read(s, video.sid) is None), STAGES[-1])
    return SourceOutcome(video.sid, video.title, {stage: "failed"}, stage, WORKER_LOST,
                         f"its worker died and the retries (executor.max_retries) ran out "
                         f"({type(exc).__name__}); finished stages are kept, the next run redoes "
                         "the rest")


def _preflight_detector(config: Config) -> None:
    """Load the detector once in this process, so weights are fetched once, not by every worker.

    A failure is not fatal here: each source records it at its detect stage (downloads and
    sampling still make progress for the next run).
    """
    try:
        detect.detector_for(config)
    except Exception:
        pass


def run(config: Config, *, force: Iterable[str] = (), retry_failed: bool = False,
        progress: bool = True, refresh_sources: bool = False,
        log: Callable[[str], None] = print, rejects: Path | str | None = None,
        limit: int | None = None) -> RunReport:
    """Run (or resume) everything the config asks for; returns what happened.

    ``rejects``: a file of crop ids to leave out of ``dataset/`` (default ``<output>/rejects.txt``
    when present); it is a global step only, so it never makes a stage run again.
    ``limit``: at most that many videos of each ``sources`` entry (a trial run).
    """
    unknown = set(force) - set(STAGES)
    if unknown:
        raise ValueError(f"unknown stage(s) {', '.join(sorted(unknown))}; stages are {', '.join(STAGES)}")
    root = config.output_dir
    rejects_file_for(root, rejects)  # a given file that does not exist fails before any work
    check_available(config.executor.kind)  # e.g. Ray not installed: fails before any work
    started = time.monotonic()
    # The executor starts after the lock (Ray: connects, checks the output folder is shared).
    with _output_lock(root), open_executor(config, root, log) as executor:
        state = State(root)
        state.sweep_partial()
        expansion = cap_per_source(expand_sources(config, state, refresh=refresh_sources), limit)
        outcomes = _expansion_failures(expansion, state)
        run_log.info(f"run {config.name}: {len(expansion.videos)} video(s) to check, output {root}")
        for outcome in outcomes:
            log_outcome(outcome)
        _preflight_detector(config)
        bar = _bar(len(expansion.videos), progress)
        interrupted = False
        units = executor.map(process_video, expansion.videos,
                             (config, root, frozenset(force), retry_failed, progress and executor.inline),
                             partial(_lost_outcome, root))
        try:
            with closing(units):  # leaving early stops the units still running
                for outcome in units:
                    outcomes.append(outcome)
                    log_outcome(outcome)
                    bar.set_postfix_str(f"failed {sum(not o.ok for o in outcomes)}", refresh=False)
                    bar.update(1)
        except KeyboardInterrupt:
            interrupted = True
        finally:
            bar.close()
        if interrupted:
            state.sweep_partial()  # workers were stopped mid-unit; their scratch goes
            log("interrupted: finished units are kept; run the same command again to resume")
            return RunReport(root, outcomes, None, time.monotonic() - started, interrupted=True)
        done = {o.sid: o.detector or "" for o in outcomes if o.ok}
        report = build_dataset(config, root, expansion.videos, done, rejects_file_for(root, rejects))
        if report.unknown_rejects:
            log(f"warning: {len(report.unknown_rejects)} crop id(s) in {report.rejects_file} match no "
                f"crop of this run and were ignored (e.g. {', '.join(report.unknown_rejects[:3])})")
        result = RunReport(root, outcomes, report, time.monotonic() - started,
                           sheets=_build_sheets(config, root, log))
        write_summary(root, summary_of(config, result))
        run_log.info(f"run {config.name} finished in {result.seconds:.1f} s: {len(result.failed)} "
                     f"failed, {report.kept} crops kept, {report.rejected} rejected")
    return result


@contextmanager
def _output_lock(root: Path) -> Iterator[RunLock]:
    """The run lock, with a full or read-only output folder reported as such."""
    try:
        root.mkdir(parents=True, exist_ok=True)
        lock = RunLock(root)
        lock.acquire()
    except OSError as exc:
        fatal = unwritable_output(exc, root)
        if fatal is None:
            raise
        raise fatal from exc
    try:
        yield lock
    except OSError as exc:  # the global steps writing into a full disk
        fatal = unwritable_output(exc, root)
        if fatal is None:
            raise
        raise fatal from exc
    finally:
        lock.release()


def _build_sheets(config: Config, root: Path, log: Callable[[str], None]):
    """The contact sheets and review page; a failure there is reported, not fatal to the run."""
    from .sheet import build_sheets

    from .errors import unwritable_output

    try:
        return build_sheets(config, root, by=config.sheet.by)
    except Exception as exc:  # cosmetic output: the dataset and manifest are already written
        if unwritable_output(exc, root) is not None:
            raise  # a full or read-only output folder stops the run, as in any other step
        log(f"warning: contact sheets not built: {type(exc).__name__}: {exc}")
        return None


def _bar(total: int, enabled: bool):
    return progress.bar(total=total, enabled=enabled, desc="sources", unit="video", leave=True)


def summary_of(config: Config, report: RunReport) -> dict[str, Any]:
    """``summary.json``: counts per stage, label and split; failures; timings."""
    stages = {s: {"ran": 0, "skipped": 0, "failed": 0} for s in STAGES}
    for o in report.outcomes:
        for stage, how in o.stages.items():
            stages[stage][how] += 1
    ds = report.dataset
    return {
        "name": config.name,
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "seconds": round(report.seconds, 2),
        "sources": {"total": len(report.outcomes), "done": sum(o.ok for o in report.outcomes),
                    "failed": len(report.failed)},
        "stages": stages,
        "stage_seconds": {s: round(sum(o.seconds.get(s, 0.0) for o in report.outcomes), 2)
                          for s in STAGES},
        "frames": sum(o.counts.get("frames", 0) for o in report.outcomes),
        "dropped_blurry": sum(o.counts.get("dropped_blurry", 0) for o in report.outcomes),
        "detections": sum(o.counts.get("detections", 0) for o in report.outcomes),
        "crops": {"total": len(ds.rows) if ds else 0, "kept": ds.kept if ds else 0,
                  "rejected": ds.rejected if ds else 0,
                  "dropped": sum(ds.dropped.values()) if ds else 0,
                  "dropped_by_reason": ds.dropped if ds else {},  # duplicate, blurry, per_track, ...
                  "tracks": ds.tracks if ds else 0,
                  "per_label": dict(sorted((ds.per_label if ds else {}).items())),
                  "per_split": dict(sorted((ds.per_split if ds else {}).items()))},
        "failed": [{"source_id": o.sid, "stage": o.failed_stage, "class": o.error_class,
                    "message": o.message} for o in report.failed],
        "rejects": {"file": str(ds.rejects_file) if ds and ds.rejects_file else None,
                    "unknown": len(ds.unknown_rejects) if ds else 0},
        "sheets": str(report.sheets.index.relative_to(report.root)) if report.sheets else None,
    }


class NotListedYet(LookupError):
    """A URL entry whose videos have not been listed by a run yet (status never goes online)."""


def _offline_expander(url: str, _options: dict) -> list[dict[str, str]]:
    raise NotListedYet(f"{url}: not listed yet (a run lists its videos)")


@dataclass
class StatusReport:
    """Per stage, the source ids that are done, failed (with why) and pending."""

    stages: dict[str, dict[str, list]]
    unlisted: list[str]
    failures: list[tuple[str, int, str, str]]


def status(config: Config) -> StatusReport:
    """What a run would skip, retry or do, from the markers alone (no network, no lock)."""
    root = config.output_dir
    state = State(root)
    expansion = expand_sources(config, state, expander=_offline_expander)
    unlisted = [m.split(": ")[0] for _, _, _, m in expansion.failures if "not listed yet" in m]
    failures = [f for f in expansion.failures if "not listed yet" not in f[3]]
    stages: dict[str, dict[str, list]] = {s: {"done": [], "failed": [], "pending": []} for s in STAGES}
    for video in expansion.videos:
        upstream, blocked = "", False
        for stage, fp_of in stage_fingerprints(video, config):
            try:
                fp = "" if blocked else fp_of(upstream)
            except Exception:
                fp, blocked = "", True
            error = state.error(stage, video.sid)
            if not blocked and state.is_done(stage, video.sid, fp):
                stages[stage]["done"].append(video.sid)
            elif error is not None and (error.get("fingerprint") in (fp, "")):
                stages[stage]["failed"].append((video.sid, error.get("class"), error.get("message")))
                blocked = True
            else:
                stages[stage]["pending"].append(video.sid)
                blocked = True
            upstream = fp
    for sid, _, kind, message in failures:
        stages["download"]["failed"].append((sid, kind, message))
    return StatusReport(stages, unlisted, failures)
