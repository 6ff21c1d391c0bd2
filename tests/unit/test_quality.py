"""Quality filters and per-track selection (pipeline/quality.py, the crop stage); how dropped
crops show in a run's outputs is in tests/e2e/test_quality.py."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from pipeline.config.schema import QualityWeights
from pipeline.algo.quality import (frontalness, outside_fraction, quality_scores, reason_counts,
                              select_per_track)
from pipeline.review.draw import Header, header_lines

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
