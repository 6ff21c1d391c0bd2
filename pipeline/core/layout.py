"""The output folder's layout, owned in one place: every folder and file name a run, a review, an
export or an evaluation reads or writes under ``output:``.

Stages, steps and readers ask ``OutputLayout(root)`` for a path instead of joining names
themselves, so renaming a file is one line here, and a reader can never look for a file under
a name its writer does not use. ``tests/unit/test_layout.py`` fails when a name below is typed
again elsewhere in ``pipeline/``.

Per-source scratch (what the stages write, one entry per source id ``sid``)::

    videos/<sid>.<ext>, videos/<sid>.info.json   download
    frames/<sid>/<t_ms>.jpg, frames/<sid>/frames.jsonl   sample
    detections/<sid>.jsonl                        detect
    crops/<sid>/<crop_id>.<ext>, crops/<sid>/crops.jsonl   crop
    identity/<sid>.npz                            identity
    state/<stage>/<sid>.json (.error.json)        markers; state/warnings.json, state/final-step.json,
                                                  state/interrupted.json

Global outputs: ``dataset/``, ``manifest.csv``, ``manifest.jsonl``, ``manifest.parquet``,
``summary.json``, ``sheets/``; beside them ``.pipeline-run.json`` (whose folder it is),
``run.lock``, the review's ``rejects.txt`` and ``identities.txt``, ``exports/<format>/``,
``evaluation.json`` and ``sweep/``.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

VIDEOS = "videos"
FRAMES = "frames"
DETECTIONS = "detections"
CROPS = "crops"
IDENTITY = "identity"
STATE = "state"
LISTINGS = "sources"
"""In ``state/``: the saved listings of playlists and searches."""
DATASET = "dataset"
SHEETS = "sheets"
EXPORTS = "exports"
SWEEP = "sweep"

FRAMES_INDEX = "frames.jsonl"
"""Per source, beside its frames: one row per sampled frame."""
CROPS_INDEX = "crops.jsonl"
"""Per source, beside its crops: one row per crop (``CropRow``)."""
INFO_SUFFIX = ".info.json"
"""``videos/<sid>.info.json``: the provenance (title, uploader, licence, URL) every crop carries."""
METADATA = "metadata.csv"
"""``dataset/<split>/metadata.csv``, for Hugging Face's imagefolder."""

MANIFEST_CSV = "manifest.csv"
MANIFEST_JSONL = "manifest.jsonl"
MANIFEST_PARQUET = "manifest.parquet"
SUMMARY = "summary.json"
SHEETS_PAGE = "index.html"
"""In ``sheets/``: the review page."""
RUN_MARKER = ".pipeline-run.json"
"""Whose output folder this is (``pipeline.state.ownership``)."""
LOCK = "run.lock"
REJECTS = "rejects.txt"
NAMES = "identities.txt"
"""Names given to person clusters (``pipeline.steps.names``)."""
EVALUATION = "evaluation.json"
WARNINGS = "warnings.json"
"""In ``state/``: the warnings the last run gave (``pipeline.state.notices``)."""
FINAL_STEP = "final-step.json"
"""In ``state/`` while the last step runs (``State.start_final_step``)."""
INTERRUPTED = "interrupted.json"
"""In ``state/`` after a run stopped by a signal, until the next run starts
(``State.note_interrupt``)."""
AVAILABILITY = ("availability.json", "availability.previous.json")
"""In ``state/``: the states of every listed video at the end of the last run and of the run
before it (``pipeline.runner.availability``)."""
AVAILABILITY_CSV = "availability.csv"
"""The availability report, beside the manifest."""

SCRATCH_DIRS = (VIDEOS, FRAMES, DETECTIONS, CROPS, STATE)
"""Folders only this code writes into, whose top level holds its per-source scratch."""
ROOT_NAMES = frozenset({DATASET, SHEETS, MANIFEST_CSV, MANIFEST_JSONL, MANIFEST_PARQUET, SUMMARY,
                        AVAILABILITY_CSV, RUN_MARKER})
"""What the run writes at the top of the output folder (besides ``run.lock`` and the folders
above); their scratch is ``.<name>.tmp``, ``.<name>.<pid>.tmp`` or ``.<name>.old.<pid>``."""


@dataclass(frozen=True)
class OutputLayout:
    """The paths of one output folder. Methods ending in ``_rel`` give the path relative to the
    root, as stage markers and manifest rows record it (``crops/<sid>/<name>``)."""

    root: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root))

    # -- per-source scratch
    @property
    def videos_dir(self) -> Path:
        return self.root / VIDEOS

    def video_file(self, sid: str, suffix: str) -> Path:
        return self.videos_dir / f"{sid}{suffix}"

    def video_info(self, sid: str) -> Path:
        return self.video_file(sid, INFO_SUFFIX)

    @property
    def frames_root(self) -> Path:
        return self.root / FRAMES

    def frames_dir(self, sid: str) -> Path:
        return self.frames_root / sid

    def frames_index(self, sid: str) -> Path:
        return self.frames_dir(sid) / FRAMES_INDEX

    @staticmethod
    def frame_rel(sid: str, name: str) -> str:
        """``frames/<sid>/<name>``, relative to the root."""
        return f"{FRAMES}/{sid}/{name}"

    def detections(self, sid: str) -> Path:
        return self.root / DETECTIONS / f"{sid}.jsonl"

    def crops_dir(self, sid: str) -> Path:
        return self.root / CROPS / sid

    def crops_index(self, sid: str) -> Path:
        return self.crops_dir(sid) / CROPS_INDEX

    @staticmethod
    def crop_rel(sid: str, name: str) -> str:
        """``crops/<sid>/<name>``, relative to the root: a crop row's ``file``."""
        return f"{CROPS}/{sid}/{name}"

    def vectors(self, sid: str) -> Path:
        return self.root / IDENTITY / f"{sid}.npz"

    # -- state
    @property
    def state_dir(self) -> Path:
        return self.root / STATE

    @property
    def listings_dir(self) -> Path:
        return self.state_dir / LISTINGS

    def stage_dir(self, stage: str) -> Path:
        return self.state_dir / stage

    def marker(self, stage: str, sid: str) -> Path:
        return self.stage_dir(stage) / f"{sid}.json"

    def error(self, stage: str, sid: str) -> Path:
        return self.stage_dir(stage) / f"{sid}.error.json"

    @property
    def final_step(self) -> Path:
        return self.state_dir / FINAL_STEP

    @property
    def interrupted(self) -> Path:
        return self.state_dir / INTERRUPTED

    @property
    def run_marker(self) -> Path:
        return self.root / RUN_MARKER

    @property
    def lock(self) -> Path:
        return self.root / LOCK

    # -- global outputs
    @property
    def dataset_dir(self) -> Path:
        return self.root / DATASET

    @staticmethod
    def dataset_file_rel(split: str, label: str, name: str) -> str:
        """A kept crop's ``dataset_file``: ``dataset/<split>/<label>/<name>``."""
        return f"{DATASET}/{split}/{label}/{name}"

    @property
    def manifest_csv(self) -> Path:
        return self.root / MANIFEST_CSV

    @property
    def manifest_jsonl(self) -> Path:
        return self.root / MANIFEST_JSONL

    @property
    def manifest_parquet(self) -> Path:
        return self.root / MANIFEST_PARQUET

    @property
    def summary(self) -> Path:
        return self.root / SUMMARY

    @property
    def sheets_dir(self) -> Path:
        return self.root / SHEETS

    @property
    def rejects(self) -> Path:
        return self.root / REJECTS

    @property
    def names(self) -> Path:
        return self.root / NAMES

    def export_dir(self, fmt: str) -> Path:
        return self.root / EXPORTS / fmt

    @property
    def evaluation(self) -> Path:
        return self.root / EVALUATION

    @property
    def sweep_dir(self) -> Path:
        return self.root / SWEEP
