"""One evaluation: a run's output folder against truth files, per source and overall, as the
JSON written to ``evaluation.json`` beside the manifest.

Detection is scored twice: on every crop (every box the detector kept, whatever the crop filters
did later) and on the kept crops only (what reaches ``dataset/``), each at IoU 0.5 and 0.3 (0.3
for labels drawn larger than the detector's box, as YouTube Faces' head boxes are). Tracks and
identities are scored on every crop at IoU 0.5.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..io.files import write_json
from .detection import detection_scores
from .identities import identity_scores
from .matching import FrameMatch, match_source, pair_truth
from .predictions import SourceRun, read_run
from .tracks import track_scores
from .truth import Truth, TruthError, read_truth

EVALUATION = "evaluation.json"
THRESHOLDS = (0.5, 0.3)
TRACK_IOU = 0.5


def read_truths(files: Sequence[Path]) -> list[Truth]:
    truths = [t for f in files for t in read_truth(Path(f))]
    if not any(t.boxes for t in truths):
        raise TruthError(f"no labelled box in {', '.join(str(f) for f in files)}")
    return truths


def _detection(paired: Sequence[tuple[Truth, SourceRun]], kept_only: bool
               ) -> tuple[dict[str, dict], dict[str, Any]]:
    """Per source and pooled over sources, at each threshold."""
    per_source: dict[str, dict] = {s.sid: {} for _, s in paired}
    overall = {}
    for th in THRESHOLDS:
        pooled: list[FrameMatch] = []
        for t, s in paired:
            frames = match_source(t, s, th, kept_only)
            per_source[s.sid][f"iou_{th}"] = detection_scores(frames).to_json()
            pooled += frames
        overall[f"iou_{th}"] = detection_scores(pooled).to_json()
    return per_source, overall


def evaluate(root: Path, truth_files: Sequence[Path]) -> dict[str, Any]:
    """The scores of the run in ``root``; raises ``TruthError`` or ``RunError`` (one-line
    messages) when a file cannot be read or no truth labels a source of the run."""
    truths = read_truths(truth_files)
    sources, has_clusters = read_run(root)
    paired, unpaired = pair_truth(truths, sources)
    if not paired:
        keys = ", ".join(sorted({t.key for t in truths}))
        raise TruthError(f"the truth labels {keys}, which is no source of the run in {root}/ "
                         "(a truth file is named after its video, e.g. X.gt.txt for X.mp4, or a "
                         "CSV names the source id or file name)")
    sids = [s.sid for _, s in paired]
    twice = next((sid for sid in sids if sids.count(sid) > 1), None)
    if twice is not None:
        files = [str(t.file) for t, s in paired if s.sid == twice]
        raise TruthError(f"{' and '.join(files)} both label {twice}: give one truth a source")
    every, every_overall = _detection(paired, kept_only=False)
    kept, kept_overall = _detection(paired, kept_only=True)
    tracked = {s.sid: match_source(t, s, TRACK_IOU) for t, s in paired if t.has_identities}
    tracks = track_scores(tracked) if tracked else {}
    identity = identity_scores([(t, tracked[s.sid]) for t, s in paired if s.sid in tracked]
                               ) if has_clusters else None
    return {
        "output": str(root),
        "truth_files": [str(f) for f in truth_files],
        "unpaired_truth": [{"file": str(t.file), "key": t.key} for t in unpaired],
        "sources": {s.sid: {"truth": str(t.file), "frames": len(s.frames),
                            "every_crop": every[s.sid], "kept": kept[s.sid],
                            "tracks": tracks.get(s.sid)} for t, s in paired},
        "overall": {"sources": len(paired), "every_crop": every_overall, "kept": kept_overall,
                    "tracks": tracks.get("overall"), "identity": identity},
    }


def write_evaluation(root: Path, result: dict[str, Any]) -> Path:
    path = root / EVALUATION
    write_json(path, result)
    return path
