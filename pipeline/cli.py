"""The command line: a thin shell over ``pipeline.run`` and friends.

Exit codes: 0 all sources done; 1 the run finished but some sources failed; 2 usage or config
error (nothing was done); interrupted: 130 by Ctrl-C, 143 by SIGTERM, 129 by SIGHUP.
"""
from __future__ import annotations

import errno
import logging
import signal
import sys
from pathlib import Path

import click

from .blocked import advice
from .config import Config, ConfigError, Identity, load_config
from .errors import OutputUnwritable, os_error_line
from .export import FORMATS as EXPORT_FORMATS
from .signals import exit_code, signal_of
from .stages import NAMES as STAGE_NAMES
from .lock import LockError


def _load(path: str) -> Config:
    try:
        return load_config(path)
    except ConfigError as exc:
        click.echo(str(exc), err=True)
        sys.exit(2)


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
    from .dataset import RejectsError
    from .executors import ExecutorError, NodeLost
    from .identity import IdentityError
    from .ownership import OutputRefused
    from .run import run as run_pipeline
    from .runlog import configure

    cfg = _load(config)
    try:
        configure(verbose, log_file)
    except OSError as exc:
        click.echo(f"error: cannot write the log file {log_file}: {exc.strerror or exc}", err=True)
        sys.exit(2)
    if executor is not None:
        cfg = cfg.model_copy(update={"executor": cfg.executor.model_copy(update={"kind": executor})})
    try:
        report = run_pipeline(cfg, force=force, retry_failed=retry_failed, progress=not quiet,
                              refresh_sources=refresh_sources, log=_log, rejects=rejects,
                              config_file=config, take_over=take_over, limit=limit)
    except (LockError, ExecutorError, OutputRefused, RejectsError, IdentityError) as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    except (OutputUnwritable, NodeLost) as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    except OSError as exc:  # any other of the output's (a linked dataset/ whose disk is gone)
        _write_failed("the run stopped (finished work is kept)", exc)
    except KeyboardInterrupt as exc:  # before the sources loop, which handles it itself
        _log("interrupted: run the same command again to resume")
        sys.exit(exit_code(signal_of(exc)))
    if report.interrupted:
        sys.exit(report.exit_code)
    _print_report(report)
    sys.exit(report.exit_code)


def _log(message: str) -> None:
    """A line on stderr; a terminal that is gone (SIGHUP) must not turn a clean stop into a
    traceback."""
    try:
        click.echo(message, err=True)
    except OSError:
        pass


def _print_report(report) -> None:
    ds = report.dataset
    done = [o for o in report.outcomes if o.ok]
    ran = sum(any(v == "ran" for v in o.stages.values()) for o in done)
    click.echo(f"sources: {len(done)} done ({ran} with new work, {len(done) - ran} already done), "
               f"{len(report.failed)} failed, in {report.seconds:.1f} s")
    if ds is not None:
        labels = ", ".join(f"{k}: {v}" for k, v in sorted(ds.per_label.items())) or "none"
        splits = " / ".join(f"{k} {ds.per_split.get(k, 0)}" for k in ("train", "val", "test"))
        dropped = ", ".join(f"{k} {v}" for k, v in ds.dropped.items())
        click.echo(f"crops: {ds.kept} ({labels}; {splits}), rejected: {ds.rejected}"
                   + (f" (from {ds.rejects_file})" if ds.rejects_file else "")
                   + (f", dropped: {sum(ds.dropped.values())} ({dropped})" if dropped else ""))
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
    if report.blocked_hosts:
        click.echo(advice(report.blocked_hosts))
    root = report.root
    click.echo(f"output: {root}/  (dataset/, manifest.csv, summary.json)")
    if report.sheets is not None:
        click.echo(f"sheets: {report.sheets.index}  (review page; contact sheets in {report.sheets.dir}/)")


@main.command()
@click.argument("config", type=click.Path(dir_okay=False))
def validate(config: str) -> None:
    """Check a config without running anything: what `run` checks before its first stage."""
    from .dataset import RejectsError
    from .executors import ExecutorError
    from .identity import IdentityError
    from .ownership import OutputRefused, check_output, identity_of
    from .run import preflight
    from .sources import local_source_problems

    cfg = _load(config)
    root = cfg.output_dir.absolute()  # as run sees it
    try:
        check_output(root, identity_of(cfg.name, config, root))
    except OutputRefused as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    missing = cfg.missing_photos()
    if missing:
        click.echo(f"{config}: " + "\n".join(["invalid config", *(f"  {m}" for m in missing)]),
                   err=True)
        sys.exit(2)
    try:
        preflight(cfg, root)
    except (RejectsError, ExecutorError, IdentityError) as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
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


def identity_line(ident: Identity) -> str:
    """The identity settings a run will use, defaults filled in, as ``validate`` prints them."""
    photos = sum(len(p) for p in ident.references.values())
    refs = (f"{len(ident.references)} reference name(s) ({photos} photo(s))" if ident.references
            else "no references")
    per_person = (f"{ident.per_person.max} a person, {ident.per_person.min_gap_s:g} s apart"
                  if ident.per_person else "off")
    return (f"identity: {ident.model}, max_distance {ident.max_distance:g}, min_face "
            f"{ident.min_face:g} px, {refs}, keep {ident.keep}, per_person {per_person}")


@main.command()
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--faces", "kind", flag_value="faces", default=True,
              help="Face crops with the YuNet detector (the default).")
@click.option("--people", "kind", flag_value="people", help="Person crops with SSDLite.")
def init(file: Path, kind: str) -> None:
    """Write a commented config to start from (never over an existing file)."""
    from .starter import write_starter

    try:
        write_starter(file, kind)  # type: ignore[arg-type]
    except FileExistsError:
        click.echo(f"error: {file} already exists; give another file name or delete it", err=True)
        sys.exit(2)
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
    from .ownership import OutputRefused
    from .plan import make_plan, plan_lines

    cfg = _load(config)
    try:
        made = make_plan(cfg, limit=limit, refresh=refresh_sources, config_file=config)
    except OutputRefused as exc:  # listing URLs would write into a folder that is not ours
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    for line in plan_lines(made, cfg):
        click.echo(line)


@main.command()
@click.argument("config", type=click.Path(dir_okay=False))
def status(config: str) -> None:
    """What is done, failed and pending, per stage (reads the markers; no network)."""
    from .run import status as run_status

    cfg = _load(config)
    report = run_status(cfg)
    click.echo(f"output: {cfg.output_dir}")
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
    click.echo(f"{'stage':<10}{'done':>6}{'failed':>8}{'pending':>9}")
    for stage, groups in report.stages.items():
        click.echo(f"{stage:<10}{len(groups['done']):>6}{len(groups['failed']):>8}{len(groups['pending']):>9}")
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
    if failed or report.final_step == "unfinished":
        sys.exit(1)  # as `run` does when a source failed


def _write_failed(what: str, exc: OSError) -> None:
    """A file-system error of an output (full disk, read-only, a file-size limit) in one line,
    exit 1."""
    click.echo(f"error: {what}: {os_error_line(exc)}", err=True)
    sys.exit(1)


@main.command()
@click.argument("config", type=click.Path(dir_okay=False))
@click.option("--by", type=click.Choice(["label", "split", "person"]), default=None,
              help="label: a sheet per label; split: also one per split; person: also one per "
                   "identity cluster (default: the config's sheet.by).")
def sheet(config: str, by: str | None) -> None:
    """(Re)build the contact sheets and the review page from the manifest only."""
    from .sheet import SheetError, build_sheets
    from .lock import RunLock

    cfg = _load(config)
    if not (cfg.output_dir / "manifest.jsonl").is_file():
        click.echo(f"error: no manifest in {cfg.output_dir}/ yet: run the pipeline first", err=True)
        sys.exit(2)
    try:
        with RunLock(cfg.output_dir, "sheet"):
            report = build_sheets(cfg, cfg.output_dir, by=by or cfg.sheet.by,  # type: ignore[arg-type]
                                      force=True)
    except (SheetError, LockError) as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    except OSError as exc:
        _write_failed("sheets not rebuilt (the previous ones are kept)", exc)
    click.echo(f"sheets: {len(report.images)} image(s) in {report.dir}/")
    click.echo(f"review page: {report.index}")


@main.command()
@click.argument("config", type=click.Path(dir_okay=False))
@click.option("--format", "fmt", required=True, type=click.Choice(EXPORT_FORMATS),
              help="coco, yolo (Ultralytics), labelstudio (pre-annotated tasks), hf (datasets "
                   "save_to_disk) or fiftyone (FiftyOneImageDetectionDataset).")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Folder to write (replaced whole). Default: <output>/exports/<format>/.")
@click.option("--all", "include_all", is_flag=True,
              help="Also the rejected and dropped crops (default: the kept ones, as in dataset/).")
@click.option("--push", metavar="REPO", default=None,
              help="hf only: also upload to the Hugging Face Hub as REPO (needs a login).")
def export(config: str, fmt: str, out: Path | None, include_all: bool, push: str | None) -> None:
    """Write the run's boxes and images in another tool's format (reads the manifest only)."""
    from .export import ExportError, export as run_export

    cfg = _load(config)
    if push is not None and fmt != "hf":
        click.echo("error: --push works with --format hf only", err=True)
        sys.exit(2)
    try:
        report = run_export(cfg.output_dir, fmt, out, include_all)
    except (ExportError, LockError) as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    except OSError as exc:
        _write_failed("nothing exported (an earlier export is kept)", exc)
    click.echo(f"{fmt}: {report.boxes} box(es) on {report.frames} frame(s) in {report.folder}/")
    if push is not None:
        from .export.hf import push as push_hf

        push_hf(report.folder, push)
        click.echo(f"pushed to the Hugging Face Hub as {push}")


@main.command()
@click.argument("config", type=click.Path(dir_okay=False))
@click.option("--port", type=click.IntRange(0, 65535), default=0,
              help="Port on 127.0.0.1 (default: a free one).")
@click.option("--open", "open_browser", is_flag=True, help="Also open the page in the web browser.")
def review(config: str, port: int, open_browser: bool) -> None:
    """Serve the review page on 127.0.0.1; its save buttons write <output>/rejects.txt and
    <output>/identities.txt (names of person clusters)."""
    from .review import ReviewServer
    from .sheet import SheetError, build_sheets
    from .lock import RunLock

    cfg = _load(config)
    root = cfg.output_dir
    if not (root / "manifest.jsonl").is_file():
        click.echo(f"error: no manifest in {root}/ yet: run the pipeline first", err=True)
        sys.exit(2)
    try:
        with RunLock(root, "review"):  # the page as the manifest says (kept as it is when up to date)
            build_sheets(cfg, root, by=cfg.sheet.by)  # type: ignore[arg-type]
        server = ReviewServer(root, port, on_save=lambda name, n: click.echo(
            f"saved {n} {'crop id(s)' if name == 'rejects.txt' else 'name(s)'} to {root / name}; "
            "run the pipeline again to apply them"))
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            click.echo(f"error: port {port} on 127.0.0.1 is in use by another program; choose "
                       "another with --port N, or leave --port out for a free one", err=True)
        else:
            click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    except (SheetError, LockError) as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    click.echo(f"review page: {server.url}  (Ctrl-C to stop)", nl=True)
    sys.stdout.flush()
    if open_browser:
        import webbrowser

        webbrowser.open(server.url)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        click.echo("stopped")
    finally:
        server.httpd.server_close()


@main.command()
@click.argument("config", type=click.Path(dir_okay=False))
@click.option("--truth", "truth", multiple=True, required=True,
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Labelled boxes: MOTChallenge gt.txt, COCO .json, CSV (source,frame,x,y,w,h"
                   "[,identity]) or YouTube Faces .labeled_faces.txt. Repeatable.")
@click.option("--sweep", "sweeps", multiple=True, metavar="KEY=V1,V2",
              help="Run and score the config once per value (every combination of several "
                   "--sweep), each in <output>/sweep/<setting>/, redoing only the stages the key "
                   "affects; prints a row a setting with its scores and ms a frame.")
def evaluate(config: str, truth: tuple[Path, ...], sweeps: tuple[str, ...]) -> None:
    """Score the run's manifest against labelled footage: detection, tracks, identity clusters
    (writes <output>/evaluation.json)."""
    from .evaluate.evaluation import evaluate as run_evaluation, write_evaluation
    from .evaluate.predictions import RunError
    from .evaluate.report import lines, sweep_lines
    from .evaluate.sweep import SweepError, parse_sweeps, sweep
    from .evaluate.tracks import motmetrics
    from .evaluate.truth import TruthError
    from .ownership import OutputRefused

    cfg = _load(config)
    try:
        motmetrics()  # before any work: the install line, not a traceback halfway
        if sweeps:
            rows, start = sweep(config, cfg, truth, parse_sweeps(sweeps), _log)
            for line in sweep_lines(rows, start):
                click.echo(line)
            click.echo(f"each setting's evaluation.json: {cfg.output_dir}/sweep/<setting>/")
            return
        result = run_evaluation(cfg.output_dir, truth)
    except (TruthError, RunError, SweepError, ImportError, OutputRefused, LockError) as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    for line in lines(result):
        click.echo(line)
    click.echo(f"written: {write_evaluation(cfg.output_dir, result)}")


@main.group()
def models() -> None:
    """Detectors, identity models and their weights."""


@models.command("list")
def models_list() -> None:
    """Known detectors, their backends and whether their weights are in the cache (or, for
    weights shipped with the package, intact)."""
    from .detectors import list_models

    for info in list_models():
        click.echo(f"{info.name}  ({info.detects}; backends: {', '.join(info.backends)})")
        for f in info.files:
            state = "ok     " if f.present else "damaged" if f.shipped else "missing"
            click.echo(f"    {state}  {f.path}{'  (shipped with the package)' if f.shipped else ''}")
        for backend in info.builtin:
            click.echo(f"    ok       {backend} backend (built in, nothing to download)")
        if info.needs:
            click.echo(f"    missing  {info.needs}")


@models.command("fetch")
@click.argument("name")
def models_fetch(name: str) -> None:
    """Download a detector's weights into the model cache (verified by sha256); weights shipped
    with the package are verified only."""
    from .detectors import fetch_model
    from .detectors.cache import ModelError

    try:
        paths = fetch_model(name)
    except (ModelError, ValueError) as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    for p in paths:
        click.echo(str(p))


@models.command("path")
@click.argument("name")
def models_path(name: str) -> None:
    """Where a detector's weights live (or would live) in the model cache, or in the package."""
    from .detectors import model_paths

    try:
        for p in model_paths(name):
            click.echo(str(p))
    except ValueError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)


if __name__ == "__main__":  # pragma: no cover
    main()
