"""``python -m pipeline evaluate``: its numbers on hand-counted cases and its truth readers (its
scores of real runs on the labelled test clips: tests/e2e/test_evaluate.py)."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import yaml
from helpers.support import cli

from pipeline.evaluate.matching import match_frame
from pipeline.evaluate.predictions import RunBox
from pipeline.evaluate.truth import TruthBox, TruthError, read_truth


SID = "file-clip-0000"


def _crop(frame: int, box: tuple, score: float, track: int, kept: bool = True,
          cluster: str | None = None) -> dict:
    x, y, w, h = box
    return {"crop_id": f"{SID}_{frame:09d}_{int(score * 100)}", "source_id": SID, "title": "clip.mp4",
            "source_url": "file:///videos/clip.mp4", "frame_index": frame, "box_x": x, "box_y": y,
            "box_w": w, "box_h": h, "score": score, "track_id": track,
            "status": "kept" if kept else "dropped", "identity_cluster": cluster}


A, B = (0, 0, 100, 100), (200, 0, 50, 50)
TRUTH_CSV = ("source,frame,x,y,w,h,identity\n"
             "clip,0,0,0,100,100,p1\nclip,0,200,0,50,50,p2\n"
             "clip,1,0,0,100,100,p1\n"
             "clip,2,0,0,100,100,p1\nclip,2,200,0,50,50,p2\n"
             "clip,4,0,0,100,100,p1\n")  # frame 4 was never sampled: not a miss
RIGHT = [_crop(0, A, 0.9, 1, cluster="c1"), _crop(0, (300, 300, 40, 40), 0.8, 2, kept=False),
         _crop(1, (10, 0, 100, 100), 0.85, 4, cluster="c2"),  # IoU 0.82; another track: a switch
         _crop(2, B, 0.7, 3, cluster="c2")]


def _fake_run(tmp_path: Path, crops: list[dict], frames=(0, 1, 2, 3)) -> Path:
    """An output folder as a run leaves it (manifest, detections of the sampled frames) and its
    config; frames 0-3 were sampled."""
    out = tmp_path / "out"
    (out / "detections").mkdir(parents=True)
    (out / "manifest.jsonl").write_text("".join(json.dumps(c) + "\n" for c in crops))
    (out / "detections" / f"{SID}.jsonl").write_text(
        "".join(json.dumps({"frame_index": f, "boxes": []}) + "\n" for f in frames))
    config = tmp_path / "run.yaml"
    config.write_text(yaml.safe_dump({"name": "t", "output": str(out),
                                      "sources": [{"path": "videos/clip.mp4"}]}))
    (tmp_path / "truth.csv").write_text(TRUTH_CSV)
    return config


def _evaluate(tmp_path: Path, *args: str) -> dict:
    done = cli("evaluate", str(tmp_path / "run.yaml"), *args, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    return json.loads((tmp_path / "out" / "evaluation.json").read_text())


def test_hand_counted_detection_tracks_and_identity(tmp_path):
    _fake_run(tmp_path, RIGHT)
    result = _evaluate(tmp_path, "--truth", "truth.csv")
    src = result["sources"][SID]
    det = src["every_crop"]["iou_0.5"]
    # 5 labelled boxes in sampled frames; found: A in 0 and 1, B in 2; one false box in frame 0
    assert (det["frames"], det["truth"], det["hits"], det["false"], det["misses"]) == (4, 5, 3, 1, 2)
    assert (det["recall"], det["precision"], det["false_per_frame"]) == (0.6, 0.75, 0.25)
    assert det["recall_by_size"]["64-128"] == {"truth": 3, "recall": 0.6667}
    assert det["recall_by_size"]["32-64"] == {"truth": 2, "recall": 0.5}
    # scores .9 hit, .85 hit, .8 false, .7 hit of 5: 0.2 + 0.2 + 0.2 * 0.75
    assert det["ap"] == 0.55
    kept = src["kept"]["iou_0.5"]  # the false box was dropped by the crop stage
    assert (kept["hits"], kept["false"], kept["precision"]) == (3, 0, 1.0)
    tracks = src["tracks"]
    # p1: track 1 then track 4 (a switch), p2: track 3; IDF1 = 2 * 2 / (5 + 4)
    assert tracks["num_switches"] == 1 and tracks["tracks_per_identity"] == 1.5
    assert tracks["idf1"] == pytest.approx(4 / 9, abs=1e-4)
    ident = result["overall"]["identity"]["bcubed"]  # (c1, p1), (c2, p1), (c2, p2)
    assert (ident["precision"], ident["recall"], ident["items"]) == (0.6667, 0.6667, 3)
    assert "recall" in cli("evaluate", "run.yaml", "--truth", "truth.csv", cwd=tmp_path).stdout


def test_crops_without_a_cluster_are_counted_not_scored(tmp_path):
    """A crop that selection dropped before the identity step (or one too small to tell) has
    no cluster: counted apart, never scored as a cluster of its own, which would make the
    perfect clustering of the other crops look like poor recall."""
    unclustered = [_crop(1, (10, 0, 100, 100), 0.85, 1, kept=False)]  # p1 again, no cluster
    _fake_run(tmp_path, [_crop(0, A, 0.9, 1, cluster="c1"), *unclustered,
                         _crop(2, A, 0.8, 1, cluster="c1"), _crop(2, B, 0.7, 3, cluster="c2")])
    ident = _evaluate(tmp_path, "--truth", "truth.csv")["overall"]["identity"]
    assert ident["bcubed"] == {"precision": 1.0, "recall": 1.0, "f": 1.0, "items": 3}
    assert (ident["clusters"], ident["identities"], ident["unclustered"]) == (2, 2, 1)
    said = cli("evaluate", "run.yaml", "--truth", "truth.csv", cwd=tmp_path).stdout
    assert "1 matched crops have no cluster" in said


def test_boxes_shifted_off_their_objects_find_nothing(tmp_path):
    shifted = [{**c, "box_x": c["box_x"] + 60} for c in RIGHT]  # IoU 0.25 with a 100-px box
    _fake_run(tmp_path, shifted)
    det = _evaluate(tmp_path, "--truth", "truth.csv")["sources"][SID]["every_crop"]["iou_0.5"]
    assert (det["recall"], det["hits"], det["false"], det["precision"]) == (0.0, 0, 4, 0.0)


def test_truth_of_no_source_and_no_run_are_one_line_errors(tmp_path):
    _fake_run(tmp_path, RIGHT)
    (tmp_path / "other.gt.txt").write_text("1,1,0,0,10,10,1,-1,-1,-1\n")
    done = cli("evaluate", "run.yaml", "--truth", "other.gt.txt", cwd=tmp_path)
    assert done.returncode == 2 and "the truth labels other, which is no source" in done.stderr
    done = cli("evaluate", "run.yaml", "--truth", "truth.csv", "--truth", "truth.csv", cwd=tmp_path)
    assert done.returncode == 2 and "both label file-clip-0000" in done.stderr
    (tmp_path / "out" / "manifest.jsonl").unlink()
    done = cli("evaluate", "run.yaml", "--truth", "truth.csv", cwd=tmp_path)
    assert done.returncode == 2 and "run the pipeline first" in done.stderr
    assert "Traceback" not in done.stderr


def test_without_motmetrics_the_error_says_how_to_install(tmp_path):
    _fake_run(tmp_path, RIGHT)
    blocker = tmp_path / "block" / "motmetrics"
    blocker.mkdir(parents=True)
    (blocker / "__init__.py").write_text("raise ImportError('No module named motmetrics')\n")
    repo = Path(__file__).resolve().parents[3]
    done = cli("evaluate", "run.yaml", "--truth", "truth.csv", cwd=tmp_path,
               env={"PYTHONPATH": f"{repo}{os.pathsep}{blocker.parent}"})
    assert done.returncode == 2 and 'pip install -e ".[eval]"' in done.stderr


# --- readers


def test_mot_reader_numbers_frames_from_zero_and_ignores_as_mot17_says(tmp_path):
    path = tmp_path / "walk.gt.txt"
    path.write_text("1,1,10,20,30,60,1,1,1.0\n"  # a pedestrian, frame 1 = frame 0 of the video
                    "2,2,10,20,30,60,0,1,1.0\n"  # conf 0: ignore
                    "2,3,50,20,30,60,1,7,1.0\n"  # static person: ignore
                    "2,4,90,20,30,60,1,3,1.0\n")  # a car: not a person, left out
    (truth,) = read_truth(path)
    assert truth.key == "walk"
    assert [(b.frame, b.identity, b.ignore) for b in truth.boxes] == [
        (0, "1", False), (1, "2", True), (1, "3", True)]
    assert truth.boxes[0].box == (10, 20, 30, 60)
    seq = tmp_path / "TUD-Campus" / "gt"
    seq.mkdir(parents=True)
    (seq / "gt.txt").write_text("1,1,1,1,5,5,1,-1,-1,-1\n")
    assert read_truth(seq / "gt.txt")[0].key == "TUD-Campus"


def test_a_box_on_an_ignore_region_is_neither_hit_nor_false():
    run = [RunBox("a", 1, (10, 20, 30, 60), 0.9, "t1", True, None)]
    match = match_frame(1, [TruthBox(1, (10, 20, 30, 60), "2", ignore=True)], run, 0.5)
    assert (match.pairs, match.false, match.missed) == ((), (), ())


def test_coco_reader_takes_frame_numbers_tracks_and_crowds(tmp_path):
    path = tmp_path / "street.coco.json"
    path.write_text(json.dumps({
        "images": [{"id": 7, "file_name": "frame_000003.png"}, {"id": 8, "file_name": "x.png",
                                                                "frame_index": 12}],
        "annotations": [{"image_id": 7, "bbox": [1, 2, 3, 4], "attributes": {"track_id": 5}},
                        {"image_id": 8, "bbox": [5, 6, 7, 8], "iscrowd": 1}],
        "categories": [{"id": 1, "name": "person"}]}))
    (truth,) = read_truth(path)
    assert truth.key == "street"
    assert [(b.frame, b.box, b.identity, b.ignore) for b in truth.boxes] == [
        (3, (1, 2, 3, 4), "5", False), (12, (5, 6, 7, 8), None, True)]


@pytest.mark.parametrize("bbox", [[1, 2, 3], [1, "two", 3, 4], None])
def test_a_coco_box_that_is_not_four_numbers_is_named(tmp_path, bbox):
    """A short box used to be read as a box of three values, and a word in it stopped the
    command with a traceback."""
    path = tmp_path / "street.coco.json"
    path.write_text(json.dumps({"images": [{"id": 7, "frame_index": 3}],
                                "annotations": [{"image_id": 7, "bbox": bbox}]}))
    with pytest.raises(TruthError, match=r"street\.coco\.json: not COCO annotations \((Value|Type)Error"):
        read_truth(path)


def test_csv_reader_with_or_without_header_and_several_sources(tmp_path):
    path = tmp_path / "labels.csv"
    path.write_text("a.mp4,0,1,2,3,4,ann\nyoutube-xyz,5,1,2,3,4\n")
    truths = {t.key: t for t in read_truth(path)}
    assert truths["a.mp4"].boxes == (TruthBox(0, (1, 2, 3, 4), "ann"),)
    assert truths["youtube-xyz"].boxes == (TruthBox(5, (1, 2, 3, 4), None),)
    path.write_text("source,frame,x,y,w,h\nb,1,1,2,3,4\n")
    assert [t.key for t in read_truth(path)] == ["b"]
    path.write_text("b,one,1,2,3,4\n")
    with pytest.raises(ValueError, match="line 1: 'one' is not a number"):
        read_truth(path)


def test_youtube_faces_reader_turns_centres_into_corners(tmp_path):
    path = tmp_path / "ytf_x.labeled_faces.txt"
    path.write_text("Aaron_Guiel\\5\\5.1841.jpg,0,185,83,47,47,0.0,1\n"
                    "Aaron_Guiel\\5\\5.1842.jpg,0,187,83,43,43,0.0,1\n")
    (truth,) = read_truth(path)
    assert truth.key == "ytf_x" and truth.people
    assert truth.boxes[1] == TruthBox(1, (165.5, 61.5, 43, 43), "Aaron_Guiel")
