"""Bystanders blurred (``crop.blur_others``), through the CLI: in every saved crop a face detector
finds the crop's subject and nobody else; with the option off the outputs are the bytes they
were; toggling it redoes the crops alone; exported frames with ``--blur-faces``."""
from __future__ import annotations

import re
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from pipeline.detectors.registry import create_detector
from helpers.boxes import iou
from helpers.support import cli, read_manifest

pytestmark = pytest.mark.slow  # whole runs through the CLI

TWO_PEOPLE = "two_people_320x192.mp4"
# Crops as wide as the 320 x 192 frame: each face crop holds the other person too (the default
# square crop of a face there holds no one else).
WIDE = {"aspect": 1.667, "padding": 2, "size": 320}


# --- whole runs on real footage ---------------------------------------------------------------

def write_config(folder: Path, testdata: Path, **crop) -> None:
    video = folder / "videos" / TWO_PEOPLE
    video.parent.mkdir(parents=True, exist_ok=True)
    if not video.exists():
        video.symlink_to(testdata / "faces" / TWO_PEOPLE)
    config = {"name": "two", "sources": [{"path": "videos"}], "sample": {"every": 0.04},
              "split": {"train": 1, "val": 0, "test": 0}, "crop": {**WIDE, **crop}}
    (folder / "two.yaml").write_text(yaml.safe_dump(config))


def crop_files(out: Path) -> dict[str, bytes]:
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted((out / "crops").rglob("*"))
            if p.is_file()}


def faces_in(image: np.ndarray, detector) -> np.ndarray:
    """Face boxes in a saved crop, at a lower score than a run keeps (0.5, not 0.7)."""
    return detector.detect(image).filtered(0.5).boxes


def subject_box(row: dict[str, str]) -> np.ndarray:
    """The crop's own detection in the saved crop's pixels."""
    sx, sy = float(row["out_w"]) / float(row["crop_w"]), float(row["out_h"]) / float(row["crop_h"])
    return np.array([(float(row["box_x"]) - float(row["crop_x"])) * sx,
                     (float(row["box_y"]) - float(row["crop_y"])) * sy,
                     float(row["box_w"]) * sx, float(row["box_h"]) * sy])


@pytest.mark.testdata
def test_blurred_crops_show_their_subject_and_no_other_face(testdata, shared_models, tmp_path):
    # the run uses the built-in backend; the crops are checked with YuNet's ONNX weights
    detector = create_detector("yunet", backend="onnx",
                               weights=str(shared_models / "yunet_test_unverified.onnx"))
    write_config(tmp_path, testdata)
    done = cli("run", "two.yaml", "-q", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    sharp = read_manifest(tmp_path / "data" / "two")
    assert "blurred_faces" not in sharp[0]
    # without the option each crop shows both people: the check below can fail
    assert all(len(faces_in(cv2.imread(str(tmp_path / "data" / "two" / r["file"])), detector)) == 2
               for r in sharp)

    write_config(tmp_path, testdata, blur_others=True)
    done = cli("run", "two.yaml", "-q", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    rows = read_manifest(tmp_path / "data" / "two")
    assert len(rows) == len(sharp) == 18 and {r["status"] for r in rows} == {"kept"}
    for row in rows:
        assert row["blurred_faces"] == "1", row["crop_id"]  # the other person
        found = faces_in(cv2.imread(str(tmp_path / "data" / "two" / row["file"])), detector)
        assert len(found) == 1, f"{row['crop_id']}: {len(found)} faces"
        assert iou(subject_box(row)[None], found.astype(float))[0, 0] > 0.5, row["crop_id"]
    # the columns a user compares by are the subject's, not changed by covering others
    assert [(r["crop_id"], r["sharpness"], r["box_x"]) for r in rows] == \
        [(r["crop_id"], r["sharpness"], r["box_x"]) for r in sharp]


@pytest.mark.testdata
def test_turning_blur_on_redoes_the_crops_alone_and_off_gives_todays_bytes(testdata, tmp_path):
    write_config(tmp_path, testdata)
    out = tmp_path / "data" / "two"
    assert cli("run", "two.yaml", "-q", cwd=tmp_path).returncode == 0
    before, manifest = crop_files(out), (out / "manifest.csv").read_bytes()

    def ran(*crop_keys: str) -> set[str]:
        done = cli("run", "two.yaml", "-q", "-v", cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        return set(re.findall(r"(\w+) file-\S+ ran", done.stdout + done.stderr))

    write_config(tmp_path, testdata, blur_others=True)
    assert ran() == {"crop"}
    blurred = crop_files(out)
    assert blurred.keys() == before.keys()
    assert all(blurred[k] != before[k] for k in before)  # every crop here has a bystander
    # the crop stage alone (above) covers as sample, detect and crop run together do
    fresh = tmp_path / "fresh"
    write_config(fresh, testdata, blur_others=True)
    assert cli("run", "two.yaml", "-q", cwd=fresh).returncode == 0
    assert crop_files(fresh / "data" / "two") == blurred
    write_config(tmp_path, testdata, blur_others=False)
    assert ran() == {"crop"}
    assert crop_files(out) == before and (out / "manifest.csv").read_bytes() == manifest
    write_config(tmp_path, testdata)  # the key left out is the same config: nothing to redo
    assert ran() == set()


@pytest.mark.parametrize("extra, words", [
    ({"identity": {"blur": {"except": "references"}, "references": {"a": ["a.jpg"]}}},
     "identity.blur: says which faces crop.blur_others leaves sharp; set crop.blur_others: true"),
    ({"crop": {"blur_others": True}, "identity": {"blur": {"except": "references"}}},
     "blur: {except: references} needs at least one entry under references"),
    ({"crop": {"blur_others": True},
      "identity": {"blur": {"except": "everyone"}, "references": {"a": ["a.jpg"]}}},
     "identity.blur.except: must be one of 'references'"),
    ({"crop": {"blur_others": "yes"}}, "crop.blur_others: must be true or false"),
])
def test_blur_config_mistakes_are_one_line_and_exit_2(tmp_path, extra, words):
    (tmp_path / "a.jpg").write_bytes(b"")
    (tmp_path / "c.yaml").write_text(yaml.safe_dump({"sources": [{"path": "v.mp4"}], **extra}))
    done = cli("validate", "c.yaml", cwd=tmp_path)
    assert done.returncode == 2 and words in done.stderr, done.stderr


@pytest.mark.testdata
def test_person_crops_cover_the_faces_of_other_people(testdata, tmp_path):
    """Person crops of a street clip: the face pass finds faces the person boxes do not carry,
    crops with other people's faces get them covered, and the crop stage alone covers exactly as
    the overlapped pass did."""
    config = {"name": "street", "sources": [{"path": str(testdata / "persons" / "tud_campus.mp4")}],
              "sample": {"every": 0.4}, "detect": {"model": "ssdlite-person"},
              "split": {"train": 1, "val": 0, "test": 0}, "crop": {"blur_others": True}}
    (tmp_path / "street.yaml").write_text(yaml.safe_dump(config))
    done = cli("run", "street.yaml", "-q", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    out = tmp_path / "data" / "street"
    rows = read_manifest(out)
    counts = [int(r["blurred_faces"]) for r in rows]
    assert rows and sum(counts) >= len(rows) // 4 and 0 in counts, counts
    first = crop_files(out)
    done = cli("run", "street.yaml", "-q", "--force", "crop", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert crop_files(out) == first


@pytest.mark.testdata
def test_exported_frames_with_blur_faces_show_no_face(testdata, shared_models, tmp_path):
    detector = create_detector("yunet", backend="onnx",
                               weights=str(shared_models / "yunet_test_unverified.onnx"))
    write_config(tmp_path, testdata)
    assert cli("run", "two.yaml", "-q", cwd=tmp_path).returncode == 0
    for flags, faces in (((), 2), (("--blur-faces",), 0)):
        done = cli("export", "two.yaml", "--format", "coco", "--out", "coco", *flags, cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        images = sorted((tmp_path / "coco" / "train").glob("*.jpg"))
        assert len(images) == 9
        assert [len(faces_in(cv2.imread(str(p)), detector)) for p in images] == [faces] * 9, flags
    # the run's own frames are untouched: covered copies were written, not links
    frames = sorted((tmp_path / "data" / "two" / "frames").rglob("*.jpg"))
    assert all(len(faces_in(cv2.imread(str(p)), detector)) == 2 for p in frames)
    # the detections it reads gone or cut short: one line, exit 2, the earlier export kept
    detections = next((tmp_path / "data" / "two" / "detections").glob("*.jsonl"))
    for damage in (lambda: detections.write_text('{"t_ms": 0, "boxes": [[1, 2'), detections.unlink):
        damage()
        done = cli("export", "two.yaml", "--format", "coco", "--out", "coco", "--blur-faces",
                   cwd=tmp_path)
        assert done.returncode == 2 and "rerun the pipeline" in done.stderr, done.stderr
        assert len(done.stderr.strip().splitlines()) == 1
        assert len(list((tmp_path / "coco" / "train").glob("*.jpg"))) == 9
