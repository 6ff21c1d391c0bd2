"""The demo videos as a test project: the config of a three-source run with segments and splits,
and what a run delivers, minus timings, to compare two runs of it."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

from helpers.support import DEMO


def make_config(tmp_path: Path, **overrides) -> dict:
    """The demo's three videos (copied into ``tmp_path/videos``), three labels, every split;
    output ``tmp_path/out``. ``overrides`` replace top-level keys."""
    videos = tmp_path / "videos"
    if not videos.exists():
        videos.mkdir()
        for name in ("astronaut_zoom.mp4", "hopper_pan.mp4", "cameraman_hopper_pan.mp4"):
            shutil.copy(DEMO / name, videos / name)
    cfg = {
        "name": "t",
        "output": str(tmp_path / "out"),
        "sources": [
            {"path": str(videos / "astronaut_zoom.mp4"), "label": "astronaut"},
            {"path": str(videos / "hopper_pan.mp4"), "label": "hopper"},
            {"path": str(videos / "cameraman_hopper_pan.mp4"), "label": "hopper",
             "segments": [{"start": 0, "end": 1.7, "label": "cameraman"}, {"start": 4.5}]},
        ],
        "sample": {"every": 1.0},
        "split": {"train": 0.34, "val": 0.33, "test": 0.33},
    }
    cfg.update(overrides)
    return cfg


def demo_config(tmp: Path, output: str, **overrides) -> dict:
    """``make_config``'s demo config, written to ``tmp / output``."""
    return make_config(tmp, output=str(tmp / output), **overrides)


def dataset_of(root: Path) -> dict:
    """Everything a run delivers, minus timings: manifests, the dataset tree, metadata, counts."""
    summary = json.loads((root / "summary.json").read_text())
    for key in ("seconds", "finished_at", "stage_seconds"):
        summary.pop(key)
    summary["failed"] = sorted(summary["failed"], key=lambda f: f["source_id"])
    tree = sorted(str(p.relative_to(root)) for p in (root / "dataset").rglob("*") if p.is_file())
    return {"manifest.csv": (root / "manifest.csv").read_text(),
            "manifest.jsonl": (root / "manifest.jsonl").read_text(),
            "metadata": {p: (root / p).read_text() for p in tree if p.endswith(".csv")},
            "tree": tree, "summary": summary}


def without_stages(delivered: dict) -> dict:
    """``dataset_of`` without the per-stage counts (a resumed run skips what the first ran)."""
    return {**delivered, "summary": {k: v for k, v in delivered["summary"].items() if k != "stages"}}
