"""The global steps after all sources: splits, the ImageFolder tree, the manifest and the summary.

They are recomputed from the per-source results on every run (cheap: they only read small JSONL
files and make hard links), so they always agree with what is on disk, whatever was resumed.

Crops the crop stage dropped (quality filters, ``crop.per_track``) come with their reason; the
global ``dedupe`` step then drops near-duplicates among the kept ones (``pipeline.algo.dedupe``). Both
stay in the manifest (``status`` ``dropped``, ``drop_reason``, ``duplicate_of``) and leave
``dataset/`` and the sheets.

A review can leave crops out: the crop ids listed in a rejects file (``<output>/rejects.txt``, as
saved by ``sheets/index.html``) get ``status`` ``rejected`` in the manifest and no place in
``dataset/``. Rejecting is a global step only, never part of a stage fingerprint, so applying or
changing a review recomputes nothing, and the crop files stay under ``crops/`` to be restored.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from ..algo.dedupe import dedupe
from ..algo.quality import DROPPED, KEPT, reason_counts
from ..config.schema import Config
from ..core.records import manifest_columns
from ..core.records import Video
from .identity import apply_identity, apply_per_person, kept_per_cluster
from .manifest import load_results, manifest_rows, write_manifests
from .rejects import REJECTED, apply_rejects, read_rejects
from .splits import empty_splits
from .tree import build_tree


@dataclass
class DatasetReport:
    """All manifest rows (kept and rejected); the counts are of what is in ``dataset/``."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    per_label: dict[str, int] = field(default_factory=dict)
    per_split: dict[str, int] = field(default_factory=dict)
    rejects_file: Path | None = None
    unknown_rejects: list[str] = field(default_factory=list)
    empty_splits: str | None = None
    """Which splits with a ratio above 0 hold no crop in ``dataset/``, and why (too few sources,
    or every crop of theirs rejected or dropped)."""
    identity: dict[str, Any] | None = None  # pipeline.steps.identity's summary, when configured

    @property
    def kept(self) -> int:
        return sum(r["status"] == KEPT for r in self.rows)

    @property
    def rejected(self) -> int:
        return sum(r["status"] == REJECTED for r in self.rows)

    @property
    def tracks(self) -> int:
        """Tracks (per source) with at least one crop in ``dataset/``."""
        return len({(r["source_id"], r.get("track_id")) for r in self.rows
                    if r["status"] == KEPT and (r.get("track_id") or 0) >= 0})

    @property
    def dropped(self) -> dict[str, int]:
        """{drop reason: crops} of the dropped rows (``duplicate``, ``blurry``, ...)."""
        return reason_counts(r.get("drop_reason") for r in self.rows if r["status"] == DROPPED)


def build_dataset(config: Config, root: Path, videos: list[Video],
                  detectors: dict[str, str], rejects_file: Path | None = None) -> DatasetReport:
    """All global outputs from the finished sources: splits, tree, manifests.

    Splits are assigned before rejects are applied, so a review never moves a source to another
    split; rejected crops stay in the manifest (``status`` ``rejected``) but not in ``dataset/``.
    """
    rows = manifest_rows(load_results(root, videos, detectors), config)
    unknown = apply_rejects(rows, read_rejects(rejects_file)) if rejects_file is not None else []
    columns = manifest_columns(config.identity is not None, config.crop.blur_others)
    identity = None
    if config.identity is not None:  # before dedupe: a crop dropped here stands for no copies
        identity = apply_identity(config, root, rows)
    if config.dedupe is not None:
        apply_dedupe(rows, config.dedupe.max_distance, config.dedupe.scope)
    # after dedupe: K distinct crops a person
    if config.identity is not None and config.identity.per_person is not None:
        apply_per_person(rows, config.identity.per_person)
    if identity is not None:  # what dataset/ holds of each person, after every drop
        identity["per_cluster"] = kept_per_cluster(rows)
    kept = [row for row in rows if row["status"] == KEPT]
    build_tree(root, kept)
    write_manifests(root, rows, columns)
    report = DatasetReport(rows, rejects_file=rejects_file, unknown_rejects=unknown,
                           empty_splits=empty_splits(rows, config.split.ratios()),
                           identity=identity)
    for row in kept:
        report.per_label[row["label"]] = report.per_label.get(row["label"], 0) + 1
        report.per_split[row["split"]] = report.per_split.get(row["split"], 0) + 1
    return report


def apply_dedupe(rows: list[dict[str, Any]], max_distance: int, scope: Literal["source", "all"]
                 ) -> int:
    """Mark kept rows that nearly duplicate a better kept row ``dropped``/``duplicate`` with
    ``duplicate_of`` (see ``pipeline.algo.dedupe``); returns how many. Rejected rows take no part,
    so a crop a reviewer threw out never stands for the copies of a good one."""
    duplicate_of = dedupe([r for r in rows if r["status"] == KEPT], max_distance, scope)
    for row in rows:
        if row["crop_id"] in duplicate_of:
            row.update(status=DROPPED, drop_reason="duplicate", dataset_file=None,
                       duplicate_of=duplicate_of[row["crop_id"]])
    return len(duplicate_of)


