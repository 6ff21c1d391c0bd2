"""``python -m pipeline evaluate`` on real runs of the labelled test clips (MOTChallenge and
YouTube Faces labels)."""
from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
import yaml
from helpers.support import cli

from pipeline.evaluate.matching import iou, match_source, pair_truth
from pipeline.evaluate.predictions import read_run
from pipeline.evaluate.truth import read_truth

pytestmark = pytest.mark.slow  # whole runs of the labelled test clips


def _real_run(tmp_path: Path, clip: Path, model: str | None) -> Path:
    config = tmp_path / "run.yaml"
    doc = {"name": "t", "output": str(tmp_path / "out"), "sources": [{"path": str(clip)}],
           "sample": {"every": 0.1}, **({"detect": {"model": model}} if model else {})}
    config.write_text(yaml.safe_dump(doc))
    done = cli("run", "-q", str(config), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    return config


@pytest.fixture(scope="module")
def tud_run(testdata, tmp_path_factory) -> Path:
    return _real_run(tmp_path_factory.mktemp("tud"), testdata / "persons" / "tud_campus.mp4",
                     "ssdlite-person")


def test_people_on_tud_campus_scored_against_its_mot_labels(tud_run, testdata):
    tmp = tud_run.parent
    done = cli("evaluate", "run.yaml", "--truth", str(testdata / "persons" / "tud_campus.gt.txt"),
               cwd=tmp)
    assert done.returncode == 0, done.stderr
    assert "IDF1" in done.stdout and "tracks/identity" in done.stdout
    result = json.loads((tmp / "out" / "evaluation.json").read_text())
    det = result["overall"]["every_crop"]["iou_0.5"]
    assert det["frames"] == 29 and det["truth"] > 100  # every 0.1 s of 71 frames at 25 fps
    assert det["recall"] > 0.5 and det["precision"] > 0.8
    assert 0 < result["overall"]["tracks"]["idf1"] <= 1
    assert result["overall"]["tracks"]["num_unique_objects"] >= 6


def test_labels_line_up_with_the_manifests_frame_index(tud_run, testdata):
    """MOT's frame 1 is the video's frame 0: the boxes overlap best with no further shift."""
    sources, _ = read_run(tud_run.parent / "out")
    (truth,) = read_truth(testdata / "persons" / "tud_campus.gt.txt")
    (paired, source), = pair_truth([truth], sources)[0]

    def mean_iou(shift: int) -> float:
        moved = replace(truth, boxes=tuple(replace(b, frame=b.frame + shift) for b in truth.boxes))
        ious = [iou(t.box, r.box) for f in match_source(moved, source, 0.3) for t, r in f.pairs]
        return sum(ious) / len(ious)

    assert mean_iou(0) > max(mean_iou(-1), mean_iou(1)) + 0.01


def test_faces_on_a_youtube_faces_clip(testdata, tmp_path):
    clip = testdata / "faces" / "ytf_aaron_guiel5.avi"
    _real_run(tmp_path, clip, None)
    done = cli("evaluate", "run.yaml", "--truth", str(clip.with_suffix(".labeled_faces.txt")),
               cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    result = json.loads((tmp_path / "out" / "evaluation.json").read_text())
    det = result["overall"]["every_crop"]["iou_0.5"]
    assert det["truth"] == det["frames"] == 44  # one labelled face in every sampled frame
    assert det["recall"] >= 0.95
    assert result["overall"]["tracks"]["tracks_per_identity"] == 1.0


def test_sweep_redoes_detection_only_and_reuses_the_frames(tud_run, testdata):
    tmp, out = tud_run.parent, tud_run.parent / "out"
    done = cli("evaluate", "run.yaml", "--truth", str(testdata / "persons" / "tud_campus.gt.txt"),
               "--sweep", "detect.min_score=0.5,0.95", cwd=tmp)
    assert done.returncode == 0, done.stderr
    rows = [line.split() for line in done.stdout.splitlines() if line.startswith("detect.min_score=")]
    assert [r[0] for r in rows] == ["detect.min_score=0.5", "detect.min_score=0.95"]
    recall = [float(r[1]) for r in rows]
    assert recall[0] > recall[1]  # a stricter score finds fewer people
    assert "redid the stages from detect on" in done.stdout
    setting = out / "sweep" / "detect.min_score=0.95"
    (sid,) = [p.stem for p in (out / "detections").glob("*.jsonl")]
    frame = next((out / "frames" / sid).glob("*.jpg"))
    # the frames are the run's own (linked, not sampled again); detection was redone
    assert (setting / "frames" / sid / frame.name).stat().st_ino == frame.stat().st_ino
    assert json.loads((setting / "evaluation.json").read_text())["overall"]["every_crop"]
    assert (setting / "detections" / f"{sid}.jsonl").read_bytes() != (
        out / "detections" / f"{sid}.jsonl").read_bytes()


def test_sweep_of_a_crop_key_keeps_the_runs_detections(tud_run, testdata):
    tmp, out = tud_run.parent, tud_run.parent / "out"
    done = cli("evaluate", "run.yaml", "--truth", str(testdata / "persons" / "tud_campus.gt.txt"),
               "--sweep", "crop.min_size=400", cwd=tmp)
    assert done.returncode == 0, done.stderr
    assert "redid the stages from crop on" in done.stdout
    (row,) = [line.split() for line in done.stdout.splitlines() if line.startswith("crop.min_size")]
    assert float(row[6]) == 0.0 < float(row[1])  # every crop too small to keep; all still found
    (detections,) = (out / "detections").glob("*.jsonl")
    linked = out / "sweep" / "crop.min_size=400" / "detections" / detections.name
    assert linked.stat().st_ino == detections.stat().st_ino
