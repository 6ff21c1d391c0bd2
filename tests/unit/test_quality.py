"""Quality filters and per-track selection (pipeline/quality.py, the crop stage), and how dropped
crops show in the manifest, dataset/, summary.json and the sheets."""
from __future__ import annotations

import json
import math
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from pipeline.config import parse_config
from pipeline.config import QualityWeights
from pipeline.quality import (frontalness, outside_fraction, quality_scores, reason_counts,
                              select_per_track)
from pipeline.run import run
from pipeline.sheet import Header, header_lines
from helpers.support import read_manifest

REPO = Path(__file__).resolve().parents[2]
FRONTAL = [[30, 40], [70, 40], [50, 62], [35, 80], [65, 80]]  # right eye, left eye, nose, mouth


def rotated(points, degrees: float) -> np.ndarray:
    a = math.radians(degrees)
    rot = np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    return (np.asarray(points, float) - 50) @ rot.T + 50


def test_frontalness_from_landmarks():
    assert frontalness(FRONTAL) == pytest.approx(1.0, abs=0.05)
    assert frontalness(rotated(FRONTAL, 35)) == pytest.approx(frontalness(FRONTAL), abs=1e-3)  # roll
    half_turned = np.array(FRONTAL, float)
    half_turned[2, 0] = 60  # the nose tip halfway to the left eye
    assert 0.3 < frontalness(half_turned) < 0.7
    profile = np.array(FRONTAL, float)
    profile[2, 0] = 70
    assert frontalness(profile) == 0.0
    looking_down = np.array(FRONTAL, float)
    looking_down[2, 1] = 79
    assert frontalness(looking_down) < 0.3
    assert frontalness(None) is None and frontalness(np.full((5, 2), np.nan)) is None


def test_outside_fraction():
    assert outside_fraction((0, 0, 10, 10), 100, 100) == 0.0
    assert outside_fraction((-10, 0, 10, 10), 100, 100) == 0.5
    assert outside_fraction((90, 90, 110, 110), 100, 100) == 0.75


def crop_row(i: int, track: int, t_ms: int, score=0.9, sharp=100.0, size=50.0, frontal=None) -> dict:
    return {"crop_id": f"c{i}", "track_id": track, "t_ms": t_ms, "score": score, "sharpness": sharp,
            "box_w": size, "box_h": size, "frontal": frontal}


def test_quality_is_relative_to_the_track():
    rows = [crop_row(0, 0, 0, sharp=100, size=40), crop_row(1, 0, 100, sharp=50, size=40),
            crop_row(2, 1, 0, sharp=5, size=10)]  # a small, soft track still has a best crop
    q = quality_scores(rows)  # rounded to 4 decimals
    assert q[0] == pytest.approx((0.9 + 1 + 1) / 3, abs=1e-4)
    assert q[1] == pytest.approx((0.9 + 0.5 + 1) / 3, abs=1e-4)
    assert q[2] == q[0]
    rows[0]["frontal"] = 0.0  # landmarks: the frontal term joins in
    assert quality_scores(rows)[0] == pytest.approx((0.9 + 1 + 1 + 0) / 4, abs=1e-4)
    only_sharp = quality_scores(rows, QualityWeights(score=0, size=0, frontal=0))
    assert only_sharp[:2] == [1.0, 0.5]


def test_select_keeps_the_best_per_track_apart_in_time():
    rows = [crop_row(i, 0, i * 100) for i in range(10)] + [crop_row(10, 1, 0), crop_row(11, -1, 0),
                                                           crop_row(12, -1, 0)]
    quality = [0.1, 0.9, 0.8, 0.95, 0.2, 0.3, 0.85, 0.4, 0.5, 0.6, 0.5, 0.5, 0.5]
    assert select_per_track(rows, quality, 3) == {3, 1, 6, 10, 11, 12}
    # 250 ms apart: 3 (t=300) first, then 6 (600), 9 (900) ... 1 (100) is 200 ms from 3
    assert select_per_track(rows, quality, 3, 0.25) == {3, 6, 9, 10, 11, 12}
    assert select_per_track(rows, [0.5] * 13, 2) == {0, 1, 10, 11, 12}  # ties: the earlier ones
    assert len(select_per_track(rows, quality, 100, 10)) == 4  # 10 s gap: one per track


def test_reason_counts_order():
    assert reason_counts(["duplicate", None, "blurry", "duplicate", "zzz"]) == \
        {"blurry": 1, "duplicate": 2, "zzz": 1}


def test_sheet_header_says_what_was_dropped():
    header = Header("demo", "hopper", 4, "2026-01-01", dropped=(("per_track", 8), ("duplicate", 1)))
    assert header_lines(header)[1] == "4 crops · 9 dropped: per track 8, duplicate 1 · 2026-01-01"
    assert header_lines(Header("demo", "hopper", 1, "2026-01-01"))[1] == "1 crop · 2026-01-01"


@pytest.fixture(scope="module")
def astronaut(tmp_path_factory) -> dict:
    tmp = tmp_path_factory.mktemp("quality")
    shutil.copy(REPO / "demo" / "videos" / "astronaut_zoom.mp4", tmp / "astronaut_zoom.mp4")
    return {"name": "q", "output": str(tmp / "out"),
            "sources": [{"path": str(tmp / "astronaut_zoom.mp4"), "label": "astronaut"}],
            "sample": {"every": 0.5}}


@pytest.mark.slow  # a whole run of a demo video
def test_dropped_crops_are_listed_with_their_reason_and_left_out(astronaut):
    root = Path(astronaut["output"])
    run(parse_config(astronaut), progress=False, log=lambda _m: None)
    everything = read_manifest(root)
    assert len(everything) == 10 and {r["status"] for r in everything} == {"kept"}
    assert len({r["track_id"] for r in everything}) == 1 and everything[0]["track_id"] == "0"
    assert all(re.fullmatch(r"[0-9a-f]{16}", r["phash"]) and 0 < float(r["quality"]) <= 1
               for r in everything)
    sharpness = sorted(float(r["sharpness"]) for r in everything)
    threshold = (sharpness[4] + sharpness[5]) / 2

    cases = [({"min_sharpness": threshold}, "blurry", 5),
             ({"padding": 2.0, "max_outside": 0.3}, "outside", None),
             ({"min_size": 10_000}, "small", 10)]
    for crop, reason, expected in cases:
        report = run(parse_config({**astronaut, "crop": crop}), progress=False, log=lambda _m: None)
        assert report.outcomes[0].stages["detect"] == "skipped"
        rows = read_manifest(root)
        dropped = [r for r in rows if r["status"] == "dropped"]
        assert dropped and {r["drop_reason"] for r in dropped} == {reason}
        if expected is not None:
            assert len(dropped) == expected
        for r in dropped:
            assert r["file"] == "" and r["dataset_file"] == "" and r["quality"] == ""
        files = {str(p.relative_to(root)) for p in (root / "crops").rglob("*.jpg")}
        assert files == {r["file"] for r in rows if r["status"] == "kept"}
        dataset = {str(p.relative_to(root)) for p in (root / "dataset").rglob("*.jpg")}
        assert dataset == {r["dataset_file"] for r in rows if r["status"] == "kept"}
        summary = json.loads((root / "summary.json").read_text())
        assert summary["crops"]["dropped_by_reason"] == {reason: len(dropped)}
        assert summary["crops"]["kept"] == len(rows) - len(dropped)
        page = (root / "sheets" / "index.html").read_text()
        data = json.loads(re.search(r'<script type="application/json" id="data">(.*?)</script>',
                                    page, re.S).group(1))
        assert len(data["crops"]) == len(rows) - len(dropped)  # the page shows no dropped crop
        if reason == "blurry":  # what was kept is the sharper half
            assert min(float(r["sharpness"]) for r in rows if r["status"] == "kept") >= threshold
