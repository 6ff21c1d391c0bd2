"""The commands that take a run elsewhere or measure it: ``export``, ``evaluate``, and ``models``
(detector and identity weights)."""
from __future__ import annotations

from pathlib import Path

import click

from ..export import CROP_FORMATS, FORMATS as EXPORT_FORMATS
from ..state.lock import LockError
from .render import counted, fail, load, log_line, write_failed


@click.command()
@click.argument("config", type=click.Path(dir_okay=False))
@click.option("--format", "fmt", required=True, type=click.Choice(EXPORT_FORMATS),
              help="coco, yolo (Ultralytics), labelstudio (pre-annotated tasks), hf (datasets "
                   "save_to_disk), fiftyone (FiftyOneImageDetectionDataset), webdataset (tar "
                   "shards) or parquet (Parquet shards in the Hugging Face Hub's layout).")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Folder to write (replaced whole). Default: <output>/exports/<format>/.")
@click.option("--all", "include_all", is_flag=True,
              help="Also the rejected and dropped crops (default: the kept ones, as in dataset/).")
@click.option("--push", metavar="REPO", default=None,
              help="hf only: also upload to the Hugging Face Hub as REPO (needs a login).")
@click.option("--shard-size", metavar="MB", type=float, default=None,
              help="webdataset and parquet: at most this many megabytes a shard (default 100).")
@click.option("--shard-count", metavar="N", type=int, default=None,
              help="webdataset and parquet: at most N crops a shard (default 1000).")
@click.option("--blur-faces", "blur", is_flag=True,
              help="Pixelate every detected face in the exported frames but those identity named "
                   "(coco, yolo, labelstudio, fiftyone; the others export crops).")
def export(config: str, fmt: str, out: Path | None, include_all: bool, push: str | None,
           shard_size: float | None, shard_count: int | None, blur: bool) -> None:
    """Write the run's boxes and images in another tool's format (reads the manifest only)."""
    # lazy: start-up time: a command imports what it runs (see the note in cli/main.py)
    from ..export import ExportError, export as run_export
    from ..export.shards import ShardLimits

    cfg = load(config)
    if push is not None and fmt != "hf":
        fail("--push works with --format hf only")
    try:
        limits = None
        if shard_size is not None or shard_count is not None:  # the other one keeps its default
            default = ShardLimits()
            limits = ShardLimits(default.size_mb if shard_size is None else shard_size,
                                 default.count if shard_count is None else shard_count)
        report = run_export(cfg.output_dir, fmt, out, include_all, limits, blur)
    except (ExportError, LockError) as exc:
        fail(exc)
    except OSError as exc:
        write_failed("nothing exported (an earlier export is kept)", exc)
    what = (counted(report.boxes, "crop") if fmt in CROP_FORMATS
            else f"{counted(report.boxes, 'box', 'boxes')} on {counted(report.frames, 'frame')}")
    click.echo(f"{fmt}: {what} in {report.folder}/")
    if push is not None:
        # lazy: start-up time: a command imports what it runs (see the note in cli/main.py)
        from ..export.hf import push as push_hf

        push_hf(report.folder, push)
        click.echo(f"pushed to the Hugging Face Hub as {push}")


@click.command()
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
    # lazy: start-up time: a command imports what it runs (see the note in cli/main.py)
    from ..evaluate.evaluation import evaluate as run_evaluation, write_evaluation
    from ..evaluate.predictions import RunError
    from ..evaluate.report import lines, sweep_lines
    from ..evaluate.sweep import SweepError, parse_sweeps, sweep
    from ..evaluate.tracks import motmetrics
    from ..evaluate.truth import TruthError
    from ..state.ownership import OutputRefused

    cfg = load(config)
    try:
        motmetrics()  # before any work: the install line, not a traceback halfway
        if sweeps:
            rows, start = sweep(config, cfg, truth, parse_sweeps(sweeps), log_line)
            for line in sweep_lines(rows, start):
                click.echo(line)
            click.echo(f"each setting's evaluation.json: {cfg.output_dir}/sweep/<setting>/")
            return
        result = run_evaluation(cfg.output_dir, truth)
    except (TruthError, RunError, SweepError, ImportError, OutputRefused, LockError) as exc:
        fail(exc)
    for line in lines(result):
        click.echo(line)
    click.echo(f"written: {write_evaluation(cfg.output_dir, result)}")


@click.group()
def models() -> None:
    """Detectors, identity models and their weights."""


@models.command("list")
def models_list() -> None:
    """Known detectors, their backends and whether their weights are in the cache (or, for
    weights shipped with the package, intact)."""
    # lazy: start-up time: a command imports what it runs (see the note in cli/main.py)
    from ..detectors.registry import list_models

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
    # lazy: start-up time: a command imports what it runs (see the note in cli/main.py)
    from ..detectors.registry import fetch_model
    from ..detectors.modelfiles import ModelError

    try:
        paths = fetch_model(name)
    except (ModelError, ValueError) as exc:
        fail(exc, 1)
    for p in paths:
        click.echo(str(p))


@models.command("path")
@click.argument("name")
def models_path(name: str) -> None:
    """Where a detector's weights live (or would live) in the model cache, or in the package."""
    # lazy: start-up time: a command imports what it runs (see the note in cli/main.py)
    from ..detectors.registry import model_paths

    try:
        for p in model_paths(name):
            click.echo(str(p))
    except ValueError as exc:
        fail(exc)
