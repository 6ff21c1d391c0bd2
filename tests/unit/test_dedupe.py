"""Near-duplicate removal (pipeline/dedupe.py): the hash's properties and the global step's
determinism (whole runs: tests/e2e/test_dedupe.py)."""
from __future__ import annotations

import random
from itertools import combinations

import cv2
import numpy as np
import pytest

from pipeline.algo.dedupe import dedupe, hamming, phash, phash_hex
from helpers.support import first_frame


@pytest.fixture(scope="module")
def faces() -> dict[str, np.ndarray]:
    """224 px face crops of three different people, cut from the demo videos."""
    hopper, astronaut = first_frame("hopper_pan.mp4"), first_frame("astronaut_zoom.mp4")
    cameraman = first_frame("cameraman_hopper_pan.mp4")

    def cut(f, x, y, s):
        return cv2.resize(f[y:y + s, x:x + s], (224, 224), interpolation=cv2.INTER_AREA)

    return {"hopper": cut(hopper, 250, 40, 180), "astronaut": cut(astronaut, 250, 20, 180),
            "cameraman": cut(cameraman, 200, 30, 180)}


def test_hash_of_identical_and_slightly_changed_crops_is_close(faces):
    face = faces["hopper"]
    assert hamming(phash(face), phash(face.copy()))[0] == 0
    ok, jpeg = cv2.imencode(".jpg", face, [cv2.IMWRITE_JPEG_QUALITY, 40])
    assert hamming(phash(face), phash(cv2.imdecode(jpeg, cv2.IMREAD_COLOR)))[0] <= 4
    assert hamming(phash(face), phash(cv2.convertScaleAbs(face, alpha=1.0, beta=25)))[0] <= 4
    assert hamming(phash(face), phash(cv2.resize(face, (180, 180))))[0] <= 4  # another crop size
    assert len(phash_hex(face)) == 16 and int(phash_hex(face), 16) == phash(face)


def test_hash_of_different_people_is_far(faces):
    pairs = list(combinations(sorted(faces), 2))
    assert len(pairs) == 3
    for a, b in pairs:
        distance = hamming(phash(faces[a]), phash(faces[b]))[0]
        assert distance >= 20, (a, b, distance)  # the default max_distance is 10


def test_hamming_is_vectorised(monkeypatch):
    hashes = np.array([0, 1, 3, 2**64 - 1, 0xF0F0], dtype=np.uint64)
    assert hamming(hashes, 0).tolist() == [0, 1, 2, 64, 8]
    monkeypatch.delattr(np, "bitwise_count", raising=False)  # numpy < 2: the lookup table
    assert hamming(hashes, 0).tolist() == [0, 1, 2, 64, 8]
    assert hamming(hashes, 2**64 - 1).tolist() == [64, 63, 62, 0, 56]


def rows_for(hashes: list[int], sources: list[str] | None = None) -> list[dict]:
    return [{"crop_id": f"c{i}", "phash": f"{h:016x}", "class": "face",
             "source_id": (sources or ["s"] * len(hashes))[i], "quality": 1.0 - i / 100}
            for i, h in enumerate(hashes)]


def test_dedupe_keeps_the_best_of_each_group_whatever_the_order():
    rows = rows_for([0b0, 0b1, 0b11, 2**40 - 1, 2**40 - 1 + 2**50])
    expected = {"c1": "c0", "c2": "c0", "c4": "c3"}
    assert dedupe(rows, 2) == expected
    for seed in range(5):  # the order sources finished in must not matter
        shuffled = rows[:]
        random.Random(seed).shuffle(shuffled)
        assert dedupe(shuffled, 2) == expected
    assert dedupe(rows, 0) == {}
    rows[0]["quality"] = 0.0  # now c1 is the best of its group
    assert dedupe(rows, 2) == {"c0": "c1", "c2": "c1", "c4": "c3"}


def test_dedupe_scope_and_class():
    rows = rows_for([5, 5, 5], sources=["a", "b", "a"])
    assert dedupe(rows, 0, "source") == {"c2": "c0"}
    assert dedupe(rows, 0, "all") == {"c1": "c0", "c2": "c0"}
    rows[1]["class"] = "person"
    assert dedupe(rows, 0, "all") == {"c2": "c0"}  # a person is never a copy of a face
