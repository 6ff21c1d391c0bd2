"""The command line: a thin shell over ``pipeline.runner.run`` and friends.

Exit codes: 0 all sources done; 1 the run finished but some sources failed; 2 usage or config
error (nothing was done); interrupted: 130 by Ctrl-C, 143 by SIGTERM, 129 by SIGHUP.

Start-up time: each command imports what it runs inside its function (``# lazy:``). Importing
every command's modules at the top made ``import pipeline.cli.main`` 1.5x as long (1.24 s
against 1.84 s on a loaded 2-core machine; the runner and the detectors are most of it), and
``python -m pipeline --help`` pays that on every call.
"""
from __future__ import annotations

import logging
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from ..core.errors import OutputUnwritable
from ..exec.signals import exit_code, signal_of
from ..stages import NAMES as STAGE_NAMES
from ..state.lock import LockError
from .render import (availability_line, fail, identity_line, load, log_line, print_report, print_status,
                     write_failed)
from .review import review, sheet
from .tools import evaluate, export, models

if TYPE_CHECKING:  # the type only: a command imports what it runs
    from ..config.starter import Kind


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="video-crops-pipeline")
def main() -> None:
    """Turn videos (YouTube or any yt-dlp site, or local files) into a labelled image dataset
    of face or person crops. Rerun the same command to resume an interrupted run."""
    logging.basicConfig(format="%(levelname)s: %(message)s", level=logging.WARNING)
    if hasattr(signal, "SIGXFSZ"):  # as Python does at start: a write over `ulimit -f` then
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # raises EFBIG (one line), never kills us


@main.command()
@click.argument("config", type=click.Path(dir_okay=False))
@click.option("--force", "force", multiple=True, type=click.Choice(STAGE_NAMES),
              help="Redo this stage (and the ones after it) for every source. Repeatable.")
@click.option("--retry-failed", is_flag=True, help="Retry units that failed in an earlier run.")
@click.option("--refresh-sources", is_flag=True,
              help="List playlists, channels and searches again instead of using the saved list.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bars.")
@click.option("--rejects", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Crop ids to leave out of dataset/, one a line (as saved by sheets/index.html). "
                   "Default: <output>/rejects.txt when present. Nothing is recomputed.")
@click.option("--executor", type=click.Choice(["local", "ray"]), default=None,
              help="Where the sources are processed, overriding the config's executor.kind: local "
                   "processes, or Ray tasks (the config's executor.address, else a local Ray instance).")
@click.option("--take-over", is_flag=True,
              help="Use an output folder that another config made (its dataset/ is rebuilt from "
                   "this config); without it such a folder is refused.")
@click.option("--limit", type=click.IntRange(min=1), default=None, metavar="N",
              help="At most N videos of each sources entry (a trial run; the listing is kept whole).")
@click.option("--verbose", "-v", count=True,
              help="A line per stage and source (stage, source, seconds, counts); -vv: debugging too.")
@click.option("--log", "log_file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Append those lines, with times, to FILE (to read a long run afterwards).")
def run(config: str, force: tuple[str, ...], retry_failed: bool, refresh_sources: bool,
        quiet: bool, rejects: Path | None, executor: str | None, take_over: bool,
        limit: int | None, verbose: int, log_file: Path | None) -> None:
    """Run every stage for every source; finished work is skipped."""
    # lazy: start-up time: a command imports what it runs (see the note in cli/main.py)
    from ..io.text import TextError
    from ..exec.base import ExecutorError, NodeLost
    from ..steps.names import IdentityError
    from ..state.ownership import OutputRefused
    from ..runner.run import run as run_pipeline
    from ..runner.runlog import configure

    cfg = load(config)
    try:
        configure(verbose, log_file)
    except OSError as exc:
        fail(f"cannot write the log file {log_file}: {exc.strerror or exc}")
    if executor is not None:
        cfg = cfg.model_copy(update={"executor": cfg.executor.model_copy(update={"kind": executor})})
    try:
        report = run_pipeline(cfg, force=force, retry_failed=retry_failed, progress=not quiet,
                              refresh_sources=refresh_sources, log=log_line, rejects=rejects,
                              config_file=config, take_over=take_over, limit=limit)
    except (LockError, ExecutorError, OutputRefused, TextError, IdentityError) as exc:
        fail(exc)
    except (OutputUnwritable, NodeLost) as exc:
        fail(exc, 1)
    except OSError as exc:  # any other of the output's (a linked dataset/ whose disk is gone)
        write_failed("the run stopped (finished work is kept)", exc)
    except KeyboardInterrupt as exc:  # before the sources loop, which handles it itself
        log_line("interrupted: run the same command again to resume")
        sys.exit(exit_code(signal_of(exc)))
    if report.interrupted:
        sys.exit(report.exit_code)
    print_report(report)
    sys.exit(report.exit_code)


@main.command()
@click.argument("config", type=click.Path(dir_okay=False))
def validate(config: str) -> None:
    """Check a config without running anything: what `run` checks before its first stage."""
    # lazy: start-up time: a command imports what it runs (see the note in cli/main.py)
    from ..io.text import TextError
    from ..exec.base import ExecutorError
    from ..steps.names import IdentityError
    from ..state.ownership import OutputRefused, check_output, identity_of
    from ..runner.run import preflight
    from ..sources.expand import local_source_problems

    cfg = load(config)
    root = cfg.output_dir.absolute()  # as run sees it
    try:
        check_output(root, identity_of(cfg.name, config, root))
    except OutputRefused as exc:
        fail(exc)
    missing = cfg.missing_photos()
    if missing:
        click.echo(f"{config}: " + "\n".join(["invalid config", *(f"  {m}" for m in missing)]),
                   err=True)
        sys.exit(2)
    try:
        preflight(cfg, root)
    except (TextError, ExecutorError, IdentityError) as exc:
        fail(exc)
    for problem in local_source_problems(cfg):
        click.echo(f"warning: {problem}; a run fails this source (not-found) and does the others",
                   err=True)
    kinds = sum(s.url is not None for s in cfg.sources), sum(s.path is not None for s in cfg.sources)
    n = len(cfg.sources)
    click.echo(f"{config}: ok ({n} source{'s' if n != 1 else ''}: {kinds[0]} URL, {kinds[1]} local; "
               f"output {cfg.output_dir})")
    d, c = cfg.detect, cfg.crop
    click.echo(f"detect: {d.model}, backend {d.backend}, min_score {d.min_score:g}, min_size "
               f"{d.min_size:g}, max_per_frame {d.max_per_frame}, tiles {d.tiles}, upscale "
               f"{d.upscale}; crop: aspect {c.aspect if c.aspect is None else format(c.aspect, 'g')}, "
               f"size {c.size}, min_size {c.min_size:g}  (unset keys: the {d.model} defaults)")
    if cfg.identity is not None:
        click.echo(identity_line(cfg.identity))


@main.command()
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--faces", "kind", flag_value="faces", default=True,
              help="Face crops with the YuNet detector (the default).")
@click.option("--people", "kind", flag_value="people", help="Person crops with SSDLite.")
def init(file: Path, kind: Kind) -> None:
    """Write a commented config to start from (never over an existing file)."""
    # lazy: start-up time: a command imports what it runs (see the note in cli/main.py)
    from ..config.starter import write_starter

    try:
        write_starter(file, kind)
    except FileExistsError:
        fail(f"{file} already exists; give another file name or delete it")
    click.echo(f"{file}: written ({kind}); put videos in videos/ or edit its sources, then: "
               f"python -m pipeline plan {file}")


@main.command()
@click.argument("config", type=click.Path(dir_okay=False))
@click.option("--limit", type=click.IntRange(min=1), default=None, metavar="N",
              help="At most N videos of each sources entry, as run --limit N would do.")
@click.option("--refresh-sources", is_flag=True,
              help="List playlists, channels and searches again instead of using the saved list.")
def plan(config: str, limit: int | None, refresh_sources: bool) -> None:
    """What a run would do, how long it would take and the disk it needs, without doing it."""
    # lazy: start-up time: a command imports what it runs (see the note in cli/main.py)
    from ..state.ownership import OutputRefused
    from ..runner.plan import make_plan, plan_lines

    cfg = load(config)
    try:
        made = make_plan(cfg, limit=limit, refresh=refresh_sources, config_file=config)
    except OutputRefused as exc:  # listing URLs would write into a folder that is not ours
        fail(exc)
    for line in plan_lines(made, cfg):
        click.echo(line)


@main.command()
@click.argument("config", type=click.Path(dir_okay=False))
def status(config: str) -> None:
    """What is done, failed and pending, per stage (reads the markers; no network)."""
    # lazy: start-up time: a command imports what it runs (see the note in cli/main.py)
    from ..runner.status import status as run_status

    cfg = load(config)
    report = run_status(cfg)
    click.echo(f"output: {cfg.output_dir}")
    if print_status(report):
        sys.exit(1)  # as `run` does when a source failed


@main.command()
@click.argument("config", type=click.Path(dir_okay=False))
def report(config: str) -> None:
    """Every listed video: done, filtered (why), unavailable, blocked, failed or pending, and
    what changed since the run before (reads the markers and saved listings; no network).
    Exits 1 when a video is unavailable, blocked or failed, else 0."""
    # lazy: start-up time: a command imports what it runs (see the note in cli/main.py)
    from ..runner.availability import CSV_NAME, exit_code as report_exit, report as availability_report, table

    cfg = load(config)
    rows = availability_report(cfg)
    click.echo(f"output: {cfg.output_dir}")
    for line in table(rows):
        click.echo(line)
    click.echo(availability_line(rows))
    csv_file = cfg.output_dir / CSV_NAME
    if csv_file.is_file():
        click.echo(f"csv: {csv_file} (written by the last finished run; messages in full)")
    sys.exit(report_exit(rows))  # 1: a video unavailable, blocked or failed, as `run` exits


for command in (sheet, review, export, evaluate, models):
    main.add_command(command)


if __name__ == "__main__":  # pragma: no cover
    main()
