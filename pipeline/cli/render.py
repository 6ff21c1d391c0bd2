"""What the commands print, and how they stop: a config error, a failed write, a run's report,
the status table."""
from __future__ import annotations

import sys
from typing import TYPE_CHECKING, NoReturn

import click

from ..config.identity import Identity
from ..config.load import load_config
from ..config.schema import Config
from ..io.yamlfile import ConfigError
from ..core.errors import os_error_line
from ..sources.blocked import advice
from ..core.delivered import Delivered

if TYPE_CHECKING:  # the types only: importing the runner costs every command's start
    from ..runner.status import StatusReport
    from ..runner.summary import RunReport


def load(path: str) -> Config:
    try:
        return load_config(path)
    except ConfigError as exc:
        click.echo(str(exc), err=True)
        sys.exit(2)


def log_line(message: str) -> None:
    """A line on stderr; a terminal that is gone (SIGHUP) must not turn a clean stop into a
    traceback."""
    try:
        click.echo(message, err=True)
    except OSError:
        pass


def fail(error: object, code: int = 2) -> NoReturn:
    """Stop the command with ``error: ...`` in one line: exit 2 for what the user can fix (a
    usage or config problem, a folder another command holds), 1 for what failed."""
    click.echo(f"error: {error}", err=True)
    sys.exit(code)


def write_failed(what: str, exc: OSError) -> NoReturn:
    """A file-system error of an output (full disk, read-only, a file-size limit) in one line,
    exit 1."""
    fail(f"{what}: {os_error_line(exc)}", 1)


def counted(n: int, noun: str, plural: str | None = None) -> str:
    """``1 crop``, ``2 crops``, ``0 boxes``: a count with its noun in the right number."""
    return f"{n} {noun if n == 1 else plural or noun + 's'}"


def availability_line(rows: list) -> str:
    """``videos: 3 done, 1 filtered, ...; changed since the run before: ...`` (the last line of
    ``report``; ``run`` ends with it too)."""
    # lazy: start-up time: only commands that ran or read a run import the runner
    from ..runner.availability import changes, counts

    changed = changes(rows)
    return f"videos: {counts(rows)}" + (f"; changed since the run before: {changed}" if changed else "")


def crops_line(delivered: Delivered) -> str:
    """``crops: 4 (astronaut: 1, hopper: 3; train 1 / val 1 / test 2), rejected: 0, dropped: 23
    (per_track 18, duplicate 5)``: what ``dataset/`` holds, as ``run`` ends and ``status`` says
    it again from summary.json, in the same words."""
    d = delivered
    labels = ", ".join(f"{k}: {v}" for k, v in sorted(d.per_label.items())) or "none"
    splits = " / ".join(f"{k} {d.per_split.get(k, 0)}" for k in ("train", "val", "test"))
    dropped = ", ".join(f"{k} {v}" for k, v in sorted(d.dropped.items(), key=lambda kv: (-kv[1], kv[0])))
    return (f"crops: {d.kept} ({labels}; {splits}), rejected: {d.rejected}"
            + (f" (from {d.rejects_file})" if d.rejects_file else "")
            + (f", dropped: {sum(d.dropped.values())} ({dropped})" if dropped else ""))


def print_report(report: RunReport) -> None:
    """The summary ``run`` prints at its end."""
    ds = report.dataset
    done = [o for o in report.outcomes if o.ok]
    ran = sum(any(v == "ran" for v in o.stages.values()) for o in done)
    click.echo(f"sources: {len(done)} done ({ran} with new work, {len(done) - ran} already done), "
               f"{len(report.failed)} failed, in {report.seconds:.1f} s")
    if ds is not None:
        click.echo(crops_line(Delivered(ds.kept, ds.per_label, ds.per_split, ds.rejected,
                                        ds.rejects_file, ds.dropped)))
        if ds.identity is not None:
            people = ", ".join(f"{k}: {v}" for k, v in ds.identity["per_identity"].items())
            small = ds.identity.get("skipped", {}).get("small", 0)
            too_small = f" ({small} too small to tell, no cluster)" if small else ""
            click.echo(f"people: {ds.identity['clusters']} identity clusters of "
                       f"{ds.identity['embedded']} faces{too_small}; named: {people or 'none'}")
    if report.failed:
        click.echo("failed sources:")
        for o in report.failed:
            click.echo(f"  {o.sid}  [{o.failed_stage}: {o.error_class}] {o.message}")
        click.echo("  (rerun with --retry-failed to try them again)")
    if report.availability:
        click.echo(availability_line(report.availability))
    if report.blocked_hosts:
        click.echo(advice(report.blocked_hosts))
    root = report.root
    click.echo(f"output: {root}/  (dataset/, manifest.csv, summary.json)")
    if report.sheets is not None:
        click.echo(f"sheets: {report.sheets.index}  (review page; contact sheets in {report.sheets.dir}/)")


def identity_line(ident: Identity) -> str:
    """The identity settings a run will use, defaults filled in, as ``validate`` prints them."""
    photos = sum(len(p) for p in ident.references.values())
    refs = (f"{len(ident.references)} reference name(s) ({photos} photo(s))" if ident.references
            else "no references")
    per_person = (f"{ident.per_person.max} a person, {ident.per_person.min_gap_s:g} s apart"
                  if ident.per_person else "off")
    return (f"identity: {ident.model}, max_distance {ident.max_distance:g}, min_face "
            f"{ident.min_face:g} px, {refs}, keep {ident.keep}, per_person {per_person}")


def print_status(report: StatusReport) -> bool:
    """The stage table of ``status`` and what failed, runs or was interrupted; True when a source
    or the last step failed, or the last run did not finish (``status`` then exits 1, as ``run``
    does)."""
    if report.running:
        who = report.running
        command = who.get("command", "run")
        where = f"pid {who.get('pid')} on {who.get('host')}, started {who.get('started')}"
        if command == "run":
            finished = len(list(report.stages.values())[-1]["done"]) if report.stages else 0
            click.echo(f"a run is in progress: {where}; {finished} of {report.sources} sources "
                       "through every stage so far")
        else:
            click.echo(f"{command} is writing into the output folder: {where}")
    elif report.interrupted:
        click.echo(interrupted_line(report))
    click.echo(f"{'stage':<10}{'done':>6}{'failed':>8}{'pending':>9}")
    for stage, groups in report.stages.items():
        counts = ", ".join(f"{k}: {n}" for k, n in report.counts.get(stage, {}).items())
        click.echo(f"{stage:<10}{len(groups['done']):>6}{len(groups['failed']):>8}"
                   f"{len(groups['pending']):>9}  {counts}".rstrip())
    if report.delivered is not None:
        click.echo(f"last finished run ({report.delivered.finished_at}): " + crops_line(report.delivered))
    if report.unlisted:
        click.echo(f"not listed yet (a run lists their videos): {', '.join(report.unlisted)}")
    failed = [(stage, f) for stage, groups in report.stages.items() for f in groups["failed"]]
    if failed:
        click.echo("failed:")
        for stage, (sid, kind, message) in failed:
            click.echo(f"  {sid}  [{stage}: {kind}] {message}")
    if report.blocked_hosts:
        click.echo(advice(report.blocked_hosts))
    if report.final_step == "running":
        click.echo("the last step (dataset, manifest, sheets) is running now")
    elif report.final_step == "unfinished":
        click.echo("the last step (dataset, manifest, sheets) did not finish: run the same command again")
    unfinished = report.final_step == "unfinished" or bool(report.interrupted and not report.running)
    return bool(failed) or unfinished


def interrupted_line(report: StatusReport) -> str:
    """``the last run was interrupted by Ctrl-C at 2026-12-07 17:02:11, 1 of 4 sources through
    every stage, stopped in sample of file-v1-...: run the same command again to carry on``."""
    last = report.interrupted or {}
    name = last.get("signal")
    if name is not None:
        how = f"was interrupted {'by Ctrl-C' if name == 'SIGINT' else f'by {name}'} at {last.get('at')}"
    else:  # the lock a killed run left
        how = (f"(pid {last.get('pid')} on {last.get('host')}, started {last.get('started')}) was "
               "killed before it finished")
    finished = len(list(report.stages.values())[-1]["done"]) if report.stages else 0
    where = ", ".join(f"{stage} of {sid}" for stage, sid in report.stopped_in[:3])
    more = len(report.stopped_in) - 3
    where += f" and {more} more" if more > 0 else ""
    return (f"the last run {how}, {finished} of {report.sources} sources through every stage"
            + (f", stopped in {where}" if where else "")
            + ": run the same command again to carry on (finished work is kept)")
