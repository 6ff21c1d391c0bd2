"""The orchestration: every video through download -> sample -> detect -> crop, then the global steps.

``run()`` is the library entry point the CLI wraps; a notebook user can call it directly. A unit
of work is ``process_video(video, config, root, ...)``: a plain function of its inputs that reads
and writes files, so the executor (``pipeline.exec.executors``: inline or a process pool of ``workers``,
or Ray tasks) only maps it; nothing here or in the stages depends on which one runs it.
"""
from __future__ import annotations

import signal
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import closing, contextmanager
from functools import partial
from pathlib import Path
from typing import Any

from ..config.schema import Config
from ..core.errors import unwritable_output
from ..core.layout import OutputLayout
from ..detectors.registry import prepare
from ..exec.cpus import limit_native_threads, threads_for
from ..exec.executors import check_available, open_executor
from ..exec.signals import signal_of, stop_on_signals
from ..io import progress
from ..review.sheets import build_sheets, ours_in_sheets
from ..sources.blocked import blocked_hosts, fresh_hosts
from ..sources.expand import cap_per_source, expand_sources
from ..stages import NAMES, active
from ..state.lock import RunLock
from ..state.markers import State
from ..state.notices import Notices
from ..state.ownership import Claim, check_output, identity_of
from ..steps.dataset import build_dataset
from ..steps.identity import preflight as identity_preflight, reference_vectors
from ..steps.manifest import write_summary
from ..steps.rejects import read_rejects, rejects_file_for
from ..steps.tree import ours_in_dataset
from .availability import fates_of, record_run
from .runlog import log as run_log, log_outcome
from .summary import RunReport, summary_of
from .unit import expansion_failures, lost_outcome, process_video


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
    d = config.detect
    note = prepare(d.model, d.backend, d.weights, progress)
    if note:
        warn(note)
    for stage in active(config):
        try:
            stage.preload(config)
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
    identity_preflight(root, config, progress)
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
    folder (``pipeline.state.ownership``); ``take_over`` lets this config have another config's folder.
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
    # SIGTERM and SIGHUP stop the run as Ctrl-C does (pipeline.exec.signals).
    # Blocks (bot checks, HTTP 429) are counted per host for this run only (pipeline.sources.blocked).
    with stop_on_signals(), _output_lock(root, claim, log), open_executor(config, root, log) as executor, \
            fresh_hosts(OutputLayout(root).state_dir):
        state = State(root)
        notices = Notices(state.dir, log)
        state.sweep_partial(swap_tests(root))
        state.clear_interrupt()  # this run is the last one now
        listed = expand_sources(config, state, refresh=refresh_sources)
        expansion = cap_per_source(listed, limit)
        config = sized_for(config, len(expansion.videos))
        limit_native_threads(threads_for(config))  # before a detector loads; pool workers inherit it
        outcomes = expansion_failures(expansion, state)
        run_log.info(f"run {config.name}: {len(expansion.videos)} video(s) to check, output {root}")
        for outcome in outcomes:
            log_outcome(outcome)
        _preflight_detector(config, progress, notices.warn)
        bar = _bar(len(expansion.videos), progress)
        interrupted: int | None = None  # the signal that stopped the units
        units = executor.map(process_video, expansion.videos,
                             (config, root, frozenset(force), retry_failed, progress and executor.inline),
                             partial(lost_outcome, root, config))
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
            state.note_interrupt(signal.Signals(interrupted).name)
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
                           availability=record_run(config, root, listed, fates_of(outcomes)),
                           blocked_hosts=blocked_hosts(expansion.locations(config),
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
    return {"dataset": ours_in_dataset(root), "sheets": ours_in_sheets}


def _build_sheets(config: Config, root: Path, log: Callable[[str], None]):
    """The contact sheets and review page; a failure there is reported, not fatal to the run."""
    try:
        return build_sheets(config, root, by=config.sheet.by)
    except Exception as exc:  # cosmetic output: the dataset and manifest are already written
        if unwritable_output(exc, root) is not None:
            raise  # a full or read-only output folder stops the run, as in any other step
        log(f"warning: contact sheets not built: {type(exc).__name__}: {exc}")
        return None


def _bar(total: int, enabled: bool):
    return progress.bar(total=total, enabled=enabled, desc="sources", unit="video", leave=True)


