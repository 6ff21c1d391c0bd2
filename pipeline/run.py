"""The orchestration: every video through download -> sample -> detect -> crop, then the global steps.

``run()`` is the library entry point the CLI wraps; a notebook user can call it directly. A unit
of work is ``process_video(video, config, root, ...)``: a plain function of its inputs that reads
and writes files, so the executor (``pipeline.executors``: inline or a process pool of ``workers``,
or Ray tasks) only maps it; nothing here or in the stages depends on which one runs it.
"""
from __future__ import annotations

import signal
import time
from contextlib import ExitStack, closing, contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from . import progress
from .blocked import blocked_hosts, fresh_hosts
from .config import Config
from .cpus import limit_native_threads, threads_for
from .dataset import (DatasetReport, build_dataset, ours_in_dataset, read_rejects, rejects_file_for,
                      write_summary)
from .errors import error_record, unwritable_output
from .executors import check_available, open_executor
from .lock import RunLock
from .ownership import Claim, check_output, identity_of
from .resume import plan_unit
from .notices import Notices
from .runlog import log as run_log, log_outcome
from .signals import exit_code, signal_of, stop_on_signals
from .sources import Expansion, Video, cap_per_source, expand_sources
from .stages import NAMES, Context, Produced, active, detect, identity, overlapped
from .state import Marker, State


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


@dataclass
class RunReport:
    root: Path
    outcomes: list[SourceOutcome]
    dataset: DatasetReport | None
    seconds: float
    interrupted: bool = False
    signum: int = signal.SIGINT  # what interrupted it: SIGINT (Ctrl-C), SIGTERM or SIGHUP
    sheets: Any = None  # pipeline.sheet.SheetReport, None when not built
    blocked_hosts: list[str] = field(default_factory=list)  # hosts that stopped sources (blocked)

    @property
    def failed(self) -> list[SourceOutcome]:
        return [o for o in self.outcomes if not o.ok]

    @property
    def exit_code(self) -> int:
        """0 all sources done, 1 some failed (2 is the CLI's usage error); interrupted: 128 +
        the signal, as a shell reports it (130 Ctrl-C, 143 SIGTERM, 129 SIGHUP)."""
        if self.interrupted:
            return exit_code(self.signum)
        return 1 if self.failed else 0


def active_stages(config: Config) -> tuple[str, ...]:
    """The names of the stages this config runs (``identity`` only when configured)."""
    return tuple(s.name for s in active(config))


def process_video(video: Video, config: Config, root: Path, force: frozenset[str] = frozenset(),
                  retry_failed: bool = False, progress: bool = False) -> SourceOutcome:
    """Run the stages a video still needs; skip the ones whose marker matches.

    ``pipeline.resume.plan_unit`` decides each stage: forcing a stage forces every later one
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


def _lost_outcome(root: Path, config: Config, video: Video, exc: BaseException) -> SourceOutcome:
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


def sized_for(config: Config, units: int) -> Config:
    """The config the units run with: no more local workers than units. With fewer sources
    than ``workers`` (one video left to resume, a two-video config with ``workers: 4``), the
    cores of workers that would never start go to the units that run, instead of idling."""
    if config.executor.kind == "ray" or units >= config.workers:
        return config
    return config.model_copy(update={"workers": max(1, units)})


def _preflight_detector(config: Config, progress: bool, warn: Callable[[str], None]) -> None:
    """Load the detector once in this process, so weights are fetched once, not by every worker
    (for ``backend: auto``, the ones it prefers; one line says when a slower fallback runs).

    A failure is not fatal here: each source records it at its detect stage (downloads and
    sampling still make progress for the next run).
    """
    from .detectors import prepare

    d = config.detect
    note = prepare(d.model, d.backend, d.weights, progress)
    if note:
        warn(note)
    try:
        detect.detector_for(config)
    except Exception:
        pass


def _warn_names(summary: dict[str, Any], warn: Callable[[str], None]) -> None:
    """One line for the names of identities.txt that name nothing, one for those naming a crop
    that is not its cluster's name (often a named cluster that a larger ``max_distance`` joined
    to another: its crops then carry the other cluster's name, if any)."""
    merged = summary["merged_names"]
    unknown = [k for k in summary["unknown_names"] if k not in merged]
    if unknown:
        warn(f"identities.txt names {', '.join(unknown)}: no cluster or track of this "
             "run has that id (ignored; delete or fix the line)")
    if merged:
        where = ", ".join(f"{k} (now in cluster {c})" for k, c in merged.items())
        warn(f"identities.txt names {where}: not a cluster of this run (a larger "
             "identity.max_distance joins clusters, each named by its smallest crop id); not "
             "applied: name those clusters, or lower identity.max_distance")


def _preflight_identity(config: Config, root: Path, progress: bool) -> None:
    """With ``identity`` configured: load the embedder once (its weights fetched once, showing
    the download only when progress is on, as the detector's) and check the reference photos and
    identities.txt, so a missing extra, a bad photo or a bad name stops the run before any work."""
    if config.identity is None:
        return
    from .identity import IdentityError, preflight, reference_vectors

    from .detectors.cache import ModelError
    from .detectors.registry import fetch_model

    preflight(root, config)
    try:
        fetch_model(config.identity.model, progress)
        identity.embedder_for(config)
    except (ImportError, ModelError) as exc:
        raise IdentityError(str(exc)) from None
    reference_vectors(config)


def preflight(config: Config, root: Path, rejects: Path | str | None = None,
              progress: bool = False) -> None:
    """What stops a run before it takes the output folder: a rejects file that is missing or
    cannot be decoded, an executor that is not installed (Ray), and for ``identity`` the extra,
    the embedder, the reference photos and identities.txt. ``validate`` calls it too, so it says
    ok only to a config ``run`` accepts. Raises ``RejectsError``, ``ExecutorError`` or
    ``IdentityError``."""
    rejects_path = rejects_file_for(root, rejects)
    if rejects_path is not None:
        read_rejects(rejects_path)
    check_available(config.executor.kind)
    _preflight_identity(config, root, progress)


def run(config: Config, *, force: Iterable[str] = (), retry_failed: bool = False,
        progress: bool = True, refresh_sources: bool = False,
        log: Callable[[str], None] = print, rejects: Path | str | None = None,
        config_file: Path | str | None = None, take_over: bool = False,
        limit: int | None = None) -> RunReport:
    """Run (or resume) everything the config asks for; returns what happened.

    ``rejects``: a file of crop ids to leave out of ``dataset/`` (default ``<output>/rejects.txt``
    when present); it is a global step only, so it never makes a stage run again.
    ``config_file``: the file the config came from, part of the identity that owns the output
    folder (``pipeline.ownership``); ``take_over`` lets this config have another config's folder.
    ``limit``: at most that many videos of each ``sources`` entry (a trial run).
    """
    unknown = set(force) - set(NAMES)
    if unknown:
        raise ValueError(f"unknown stage(s) {', '.join(sorted(unknown))}; stages are {', '.join(NAMES)}")
    # Absolute once, here: yt-dlp reports absolute file paths, and every path is compared with
    # (and made relative to) this root; paths written into markers stay relative to it.
    root = config.output_dir.absolute()
    preflight(config, root, rejects, progress)
    claim = check_output(root, identity_of(config.name, config_file, root), take_over)  # writes nothing
    started = time.monotonic()
    # The executor starts after the lock (Ray: connects, checks the output folder is shared).
    # SIGTERM and SIGHUP stop the run as Ctrl-C does (pipeline.signals).
    # Blocks (bot checks, HTTP 429) are counted per host for this run only (pipeline.blocked).
    with stop_on_signals(), _output_lock(root, claim, log), open_executor(config, root, log) as executor, \
            fresh_hosts(root / "state"):
        state = State(root)
        notices = Notices(state.dir, log)
        state.sweep_partial(swap_tests(root))
        expansion = cap_per_source(expand_sources(config, state, refresh=refresh_sources), limit)
        config = sized_for(config, len(expansion.videos))
        limit_native_threads(threads_for(config))  # before a detector loads; pool workers inherit it
        outcomes = _expansion_failures(expansion, state)
        run_log.info(f"run {config.name}: {len(expansion.videos)} video(s) to check, output {root}")
        for outcome in outcomes:
            log_outcome(outcome)
        _preflight_detector(config, progress, notices.warn)
        bar = _bar(len(expansion.videos), progress)
        interrupted: int | None = None  # the signal that stopped the units
        units = executor.map(process_video, expansion.videos,
                             (config, root, frozenset(force), retry_failed, progress and executor.inline),
                             partial(_lost_outcome, root, config))
        try:
            with closing(units):  # leaving early stops the units still running
                for outcome in units:
                    outcomes.append(outcome)
                    log_outcome(outcome)
                    bar.set_postfix_str(f"failed {sum(not o.ok for o in outcomes)}", refresh=False)
                    bar.update(1)
        except KeyboardInterrupt as exc:  # Ctrl-C, SIGTERM or SIGHUP
            interrupted = signal_of(exc)
        finally:
            bar.close()
        if interrupted is not None:
            state.sweep_partial(swap_tests(root))  # workers were stopped mid-unit; their scratch goes
            log(f"interrupted{_by(interrupted)}: finished units are kept; run the same command "
                "again to resume")
            return RunReport(root, outcomes, None, time.monotonic() - started, interrupted=True,
                             signum=interrupted)
        # no unit runs now: scratch of units whose worker died (Ray retried them) goes too
        state.sweep_partial(swap_tests(root))
        done = {o.sid: o.detector or "" for o in outcomes if o.ok}
        state.start_final_step()
        report = build_dataset(config, root, expansion.videos, done, rejects_file_for(root, rejects))
        if report.unknown_rejects:
            notices.warn(f"{len(report.unknown_rejects)} crop id(s) in {report.rejects_file} match "
                         f"no crop of this run and were ignored (e.g. "
                         f"{', '.join(report.unknown_rejects[:3])})")
        if report.empty_splits:
            notices.warn(report.empty_splits)
        if report.identity:
            _warn_names(report.identity, notices.warn)
        result = RunReport(root, outcomes, report, time.monotonic() - started,
                           sheets=_build_sheets(config, root, log),
                           blocked_hosts=blocked_hosts(config, expansion,
                                                       [(o.sid, o.error_class) for o in outcomes]))
        notices.close()
        write_summary(root, summary_of(config, result))
        state.finish_final_step()
        run_log.info(f"run {config.name} finished in {result.seconds:.1f} s: {len(result.failed)} "
                     f"failed, {report.kept} crops kept, {report.rejected} rejected")
    return result


def _by(signum: int) -> str:
    """' by SIGTERM' for a signal; nothing for Ctrl-C, which the user knows they pressed."""
    return f" by {signal.Signals(signum).name}" if signum != signal.SIGINT else ""


@contextmanager
def _output_lock(root: Path, claim: Claim, log: Callable[[str], None]) -> Iterator[RunLock]:
    """The run marker (first) and the run lock, with a full or read-only output folder reported
    as such."""
    try:
        root.mkdir(parents=True, exist_ok=True)
        claim.write(log)
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


def swap_tests(root: Path) -> dict[str, Callable[[str, Path], bool]]:
    """For the sweep: which files of an old ``dataset/`` or ``sheets/`` copy are ours to delete."""
    from .sheet import ours_in_sheets

    return {"dataset": ours_in_dataset(root), "sheets": ours_in_sheets}


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
    stages = {s: {"ran": 0, "skipped": 0, "failed": 0} for s in active_stages(config)}
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
                          for s in active_stages(config)},
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
        **({"identity": ds.identity} if ds and ds.identity is not None else {}),
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
    final_step: str | None = None
    """``running`` or ``unfinished`` when the last step (dataset, manifest, sheets) is not done."""
    running: dict[str, Any] | None = None
    """The run that holds the output folder now (pid, host, started), if any."""
    sources: int = 0
    blocked_hosts: list[str] = field(default_factory=list)
    """Hosts whose bot checks or HTTP 429 failed sources (``pipeline.blocked``)."""


def status(config: Config) -> StatusReport:
    """What a run would skip, retry or do, from the markers alone (no network, no lock)."""
    root = config.output_dir
    state = State(root)
    expansion = expand_sources(config, state, expander=_offline_expander)
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
    failed = [(sid, kind) for groups in stages.values() for sid, kind, _ in groups["failed"]]
    return StatusReport(stages, unlisted, failures, final_step_of(state, root),
                        RunLock(root).holder(), len(expansion.videos),
                        blocked_hosts(config, expansion, failed))


def final_step_of(state: State, root: Path) -> str | None:
    """Whether the last step is ``running`` (its run holds the lock) or ``unfinished`` (its run
    was killed or stopped), else None."""
    if not state.final_step_unfinished():
        return None
    holder = RunLock(root).holder() or {}
    return "running" if holder and holder.get("command", "run") == "run" else "unfinished"
