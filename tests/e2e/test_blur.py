"""Bystanders blurred (``crop.blur_others``), through the CLI: in every saved crop a face detector
finds the crop's subject and nobody else; with the option off the outputs are the bytes they
were; toggling it redoes the crops alone; exported frames with ``--blur-faces``. The runs of
the two-people clip are made once for the module (``runs``) and copied by a test that changes one."""
from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
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


@dataclass(frozen=True)
class Runs:
    """The clip run once without the option (``sharp``, left as it was), a copy of that run
    rerun with it on (``toggled``; ``ran_on``: the stages that rerun ran) and a fresh run with it
    on (``fresh``): project folders, each with its ``two.yaml``, read-only (copy one to change it)."""
    sharp: Path
    toggled: Path
    fresh: Path
    ran_on: set[str]


def ran(project: Path) -> set[str]:
    """The stages a ``run -v`` of the project's config ran."""
    done = cli("run", "two.yaml", "-q", "-v", cwd=project)
    assert done.returncode == 0, done.stderr
    return set(re.findall(r"(\w+) file-\S+ ran", done.stdout + done.stderr))


@pytest.fixture(scope="module")
def runs(testdata, tmp_path_factory) -> Runs:
    base = tmp_path_factory.mktemp("blur")
    sharp, toggled, fresh = base / "sharp", base / "toggled", base / "fresh"
    write_config(sharp, testdata)
    done = cli("run", "two.yaml", "-q", cwd=sharp)
    assert done.returncode == 0, done.stderr
    shutil.copytree(sharp, toggled, symlinks=True)
    write_config(toggled, testdata, blur_others=True)
    ran_on = ran(toggled)
    write_config(fresh, testdata, blur_others=True)
    done = cli("run", "two.yaml", "-q", cwd=fresh)
    assert done.returncode == 0, done.stderr
    return Runs(sharp, toggled, fresh, ran_on)


@pytest.mark.testdata
def test_blurred_crops_show_their_subject_and_no_other_face(runs, shared_models):
    # the run uses the built-in backend; the crops are checked with YuNet's ONNX weights
    detector = create_detector("yunet", backend="onnx",
                               weights=str(shared_models / "yunet_test_unverified.onnx"))
    sharp_out = runs.sharp / "data" / "two"
    sharp = read_manifest(sharp_out)
    assert "blurred_faces" not in sharp[0]
    # without the option each crop shows both people: the check below can fail
    assert all(len(faces_in(cv2.imread(str(sharp_out / r["file"])), detector)) == 2 for r in sharp)

    out = runs.toggled / "data" / "two"
    rows = read_manifest(out)
    assert len(rows) == len(sharp) == 18 and {r["status"] for r in rows} == {"kept"}
    for row in rows:
        assert row["blurred_faces"] == "1", row["crop_id"]  # the other person
        found = faces_in(cv2.imread(str(out / row["file"])), detector)
        assert len(found) == 1, f"{row['crop_id']}: {len(found)} faces"
        assert iou(subject_box(row)[None], found.astype(float))[0, 0] > 0.5, row["crop_id"]
    # the columns a user compares by are the subject's, not changed by covering others
    assert [(r["crop_id"], r["sharpness"], r["box_x"]) for r in rows] == \
        [(r["crop_id"], r["sharpness"], r["box_x"]) for r in sharp]


@pytest.mark.testdata
def test_turning_blur_on_redoes_the_crops_alone_and_off_gives_todays_bytes(runs, testdata, tmp_path):
    sharp_out = runs.sharp / "data" / "two"
    before, manifest = crop_files(sharp_out), (sharp_out / "manifest.csv").read_bytes()
    assert runs.ran_on == {"crop"}
    blurred = crop_files(runs.toggled / "data" / "two")
    assert blurred.keys() == before.keys()
    assert all(blurred[k] != before[k] for k in before)  # every crop here has a bystander
    # the crop stage alone (above) covers as sample, detect and crop run together do
    assert crop_files(runs.fresh / "data" / "two") == blurred
    work = tmp_path / "work"
    shutil.copytree(runs.toggled, work, symlinks=True)
    out = work / "data" / "two"
    write_config(work, testdata, blur_others=False)
    assert ran(work) == {"crop"}
    assert crop_files(out) == before and (out / "manifest.csv").read_bytes() == manifest
    write_config(work, testdata)  # the key left out is the same config: nothing to redo
    assert ran(work) == set()


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
def test_exported_frames_with_blur_faces_show_no_face(runs, shared_models, tmp_path):
    detector = create_detector("yunet", backend="onnx",
                               weights=str(shared_models / "yunet_test_unverified.onnx"))
    work = tmp_path / "work"  # a copy of the run without the option
    shutil.copytree(runs.sharp, work, symlinks=True)
    for flags, faces in (((), 2), (("--blur-faces",), 0)):
        done = cli("export", "two.yaml", "--format", "coco", "--out", "coco", *flags, cwd=work)
        assert done.returncode == 0, done.stderr
        images = sorted((work / "coco" / "train").glob("*.jpg"))
        assert len(images) == 9
        assert [len(faces_in(cv2.imread(str(p)), detector)) for p in images] == [faces] * 9, flags
    # the run's own frames are untouched: covered copies were written, not links
    frames = sorted((work / "data" / "two" / "frames").rglob("*.jpg"))
    assert all(len(faces_in(cv2.imread(str(p)), detector)) == 2 for p in frames)
    # the detections it reads gone or cut short: one line, exit 2, the earlier export kept
    detections = next((work / "data" / "two" / "detections").glob("*.jsonl"))
    for damage in (lambda: detections.write_text('{"t_ms": 0, "boxes": [[1, 2'), detections.unlink):
        damage()
        done = cli("export", "two.yaml", "--format", "coco", "--out", "coco", "--blur-faces",
                   cwd=work)
        assert done.returncode == 2 and "rerun the pipeline" in done.stderr, done.stderr
        assert len(done.stderr.strip().splitlines()) == 1
        assert len(list((work / "coco" / "train").glob("*.jpg"))) == 9
