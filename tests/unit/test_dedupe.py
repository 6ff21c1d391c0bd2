"""Near-duplicate removal (pipeline/dedupe.py): the hash's properties, the global step's
determinism, and on videos: a still frame gives one crop, different people are never merged."""
from __future__ import annotations

import json
import random
from pathlib import Path

import cv2
import numpy as np
import pytest

from pipeline.config import parse_config
from pipeline.dedupe import dedupe, hamming, phash, phash_hex
from pipeline.run import run
from helpers.support import read_manifest

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "demo" / "videos"


def first_frame(name: str) -> np.ndarray:
    cap = cv2.VideoCapture(str(DEMO / name))
    ok, frame = cap.read()
    cap.release()
    assert ok
    return frame


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
    names = sorted(faces)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
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
    for r in rows:
        if r["status"] == "dropped":
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
