"""Near-duplicate removal in whole runs: a still frame gives one crop, different people in real
footage are never merged."""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from pipeline.config.load import parse_config
from pipeline.runner.run import run
from helpers.support import first_frame, read_manifest


def write_still_video(path: Path, image: np.ndarray, frames: int = 20, fps: float = 10.0) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps,
                             (image.shape[1], image.shape[0]))
    for _ in range(frames):
        writer.write(image)
    writer.release()
    return path


@pytest.mark.slow  # two whole runs
def test_a_still_frame_gives_one_crop_and_two_people_stay_two(tmp_path):
    hopper, astronaut = first_frame("hopper_pan.mp4"), first_frame("astronaut_zoom.mp4")
    one = write_still_video(tmp_path / "still.mp4", hopper)
    two = write_still_video(tmp_path / "two.mp4", np.hstack([hopper[:, 160:480], astronaut[:, 160:480]]))
    raw = {"name": "still", "output": str(tmp_path / "out"),
           "sources": [{"path": str(one), "label": "one"}, {"path": str(two), "label": "two"}],
           "sample": {"every": 0.2}, "detect": {"upscale": "off"}}
    run(parse_config(raw), progress=False, log=lambda _m: None)
    before = read_manifest(tmp_path / "out")
    assert sum(r["label"] == "one" for r in before) == 10 and sum(r["label"] == "two" for r in before) == 20
    assert {r["status"] for r in before} == {"kept"}  # defaults keep everything

    raw["dedupe"] = {"max_distance": 10, "scope": "all"}
    report = run(parse_config(raw), progress=False, log=lambda _m: None)
    assert all(set(o.stages.values()) == {"skipped"} for o in report.outcomes)  # a global step
    rows = read_manifest(tmp_path / "out")
    kept = [r for r in rows if r["status"] == "kept"]
    assert sum(r["label"] == "one" for r in kept) == 1
    two_kept = sorted(float(r["box_x"]) for r in kept if r["label"] == "two")
    assert len(two_kept) == 2 and two_kept[1] - two_kept[0] > 200, "one crop of each person"
    by_id = {r["crop_id"]: r for r in rows}
    dropped = [r for r in rows if r["status"] == "dropped"]
    assert dropped, "the still frame's repeats are dropped"
    for r in dropped:
        assert r["drop_reason"] == "duplicate" and r["dataset_file"] == ""
        rep = by_id[r["duplicate_of"]]
        assert rep["status"] == "kept" and rep["class"] == r["class"]
        assert abs(float(rep["box_x"]) - float(r["box_x"])) < 50  # the same person
        assert (tmp_path / "out" / r["file"]).is_file()  # the file stays in crops/
    dataset = {str(p.relative_to(tmp_path / "out")) for p in (tmp_path / "out" / "dataset").rglob("*.jpg")}
    assert dataset == {r["dataset_file"] for r in kept}
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["crops"]["dropped_by_reason"] == {"duplicate": 27} and summary["crops"]["kept"] == 3
    assert summary["crops"]["dropped"] == 27 and summary["crops"]["tracks"] == 3
    # stable: a rerun (resume) gives the very same manifest
    run(parse_config(raw), progress=False, log=lambda _m: None)
    assert read_manifest(tmp_path / "out") == rows


@pytest.mark.slow  # a whole run on real footage
@pytest.mark.testdata
def test_different_people_in_real_footage_are_never_merged(testdata, tmp_path):
    cfg = parse_config({"output": str(tmp_path / "out"),
                        "sources": [{"path": str(testdata / "faces" / "two_people_320x192.mp4")}],
                        "sample": {"every": 0.04}, "detect": {"min_size": 20},
                        "dedupe": {"max_distance": 10, "scope": "source"}})
    assert run(cfg, progress=False, log=lambda _m: None).exit_code == 0
    rows = read_manifest(cfg.output_dir)
    side = {r["crop_id"]: float(r["box_x"]) < 160 for r in rows}
    assert len(rows) == 18 and sum(side.values()) == 9
    kept = [r for r in rows if r["status"] == "kept"]
    assert {side[r["crop_id"]] for r in kept} == {True, False}
    for r in rows:
        if r["duplicate_of"]:
            assert side[r["duplicate_of"]] == side[r["crop_id"]]
