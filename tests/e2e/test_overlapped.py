"""Sample, detect and crop overlapped in one pipeline give, byte for byte, what the stages give one
after another: the run is compared with the same stages re-run alone from the files on disk
(``--force detect`` / ``--force crop``), with a run whose sampling is sequential, and with a run
killed in the middle of the overlapped stages and resumed."""
from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from pipeline.config.load import parse_config
from pipeline.io.overlap import DEPTH
from pipeline.runner.run import run
from helpers.support import cli
from helpers.demo import make_config

pytestmark = pytest.mark.slow  # whole runs of the demo videos

OUTPUTS = ("frames", "detections", "crops", "dataset", "manifest.csv", "manifest.jsonl")


def outputs(root: Path) -> dict[str, bytes]:
    """Every file a user reads, by path in the output folder."""
    files = {}
    for name in OUTPUTS:
        path = root / name
        for f in [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file()):
            files[str(f.relative_to(root))] = f.read_bytes()
    return files


def sample_markers(root: Path) -> list[dict]:
    return [json.loads(p.read_text())["result"] for p in sorted((root / "state" / "sample").glob("*.json"))]


def config(tmp_path: Path, shared_models: Path, output: str = "out", **overrides) -> dict:
    """The demo's three sources (one with two segments), every 0.5 s, YuNet with landmarks."""
    detect = {"weights": str(shared_models / "yunet_test_unverified.onnx"), **overrides.pop("detect", {})}
    return make_config(tmp_path, **{"output": str(tmp_path / output), "sample": {"every": 0.5},
                                     "detect": detect, **overrides})


@pytest.mark.parametrize("overrides", [{}, {"workers": 2},
                                       {"crop": {"per_track": {"max": 2}, "min_size": 40}},
                                       # boxes of 0.3-0.945 kept only when they continue a track
                                       # (7 do, 13 are left out: their frames are cut again)
                                       {"detect": {"min_score": 0.945, "track": {"low_score": 0.3}}}],
                         ids=["defaults", "workers-2", "per-track", "weak-boxes"])
def test_overlapped_outputs_equal_the_stages_rerun_alone(tmp_path, shared_models, overrides):
    raw = config(tmp_path, shared_models, **overrides)
    cfg = parse_config(raw)
    assert run(cfg, progress=False, log=lambda _m: None).exit_code == 0
    assert all("overlapped" in m for m in sample_markers(cfg.output_dir))  # the path under test
    first = outputs(cfg.output_dir)
    assert any(k.startswith("crops/") and k.endswith(".jpg") for k in first)

    for stage in ("crop", "detect"):  # re-run alone, reading the frames back from disk
        report = run(cfg, force=[stage], progress=False, log=lambda _m: None)
        assert {o.stages["sample"] for o in report.outcomes} == {"skipped"}
        assert {o.stages[stage] for o in report.outcomes} == {"ran"}
        again = outputs(cfg.output_dir)
        assert again.keys() == first.keys()
        assert [k for k in first if first[k] != again[k]] == []


def test_sequential_sampling_writes_the_same_frames_and_every_n_falls_back(tmp_path, shared_models):
    """``detect.every: 2`` runs the stages one after another (interpolated boxes need the next
    detected frame): its frames equal the overlapped run's, and its detect and crop stages give
    the same files when re-run alone."""
    overlapped = parse_config(config(tmp_path, shared_models))
    assert run(overlapped, progress=False, log=lambda _m: None).exit_code == 0
    every2 = parse_config(config(tmp_path, shared_models, output="every2", detect={"every": 2}))
    assert run(every2, progress=False, log=lambda _m: None).exit_code == 0
    assert not any("overlapped" in m for m in sample_markers(every2.output_dir))

    frames = {k: v for k, v in outputs(overlapped.output_dir).items() if k.startswith("frames/")}
    assert len(frames) > 20
    assert frames == {k: v for k, v in outputs(every2.output_dir).items() if k.startswith("frames/")}

    first = outputs(every2.output_dir)
    run(every2, force=["detect"], progress=False, log=lambda _m: None)
    assert outputs(every2.output_dir) == first


def test_frames_in_flight_stay_bounded(tmp_path, shared_models):
    """At 10 frames a second, each source's frames far outnumber what the pipeline holds."""
    cfg = parse_config(config(tmp_path, shared_models, sample={"every": 0.1}))
    assert run(cfg, progress=False, log=lambda _m: None).exit_code == 0
    markers = sample_markers(cfg.output_dir)
    assert min(m["frames"] for m in markers) >= 30
    # decoded, waiting for its JPEG, waiting for detect and crop: DEPTH + 1 at each hand-over
    assert max(m["overlapped"]["peak_frames_in_flight"] for m in markers) <= 2 * (DEPTH + 1) + 1


def test_sigkill_inside_the_overlapped_stages_resumes_to_identical_outputs(tmp_path, shared_models):
    raw = config(tmp_path, shared_models, sample={"every": 0.2})
    config_file = tmp_path / "c.yaml"
    config_file.write_text(yaml.safe_dump(raw))
    root = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-m", "pipeline", "run", str(config_file), "-q"],
                            cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    # frames and crops are both being written: the middle of the overlapped stages
    while not (any(root.glob("crops/.*.tmp/*.jpg")) and any(root.glob("frames/.*.tmp/*.jpg"))):
        assert proc.poll() is None and time.monotonic() < deadline, "run ended before the kill"
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (root / "manifest.csv").exists()

    resumed = cli("run", str(config_file), "-q", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert list(root.glob("*/.*.tmp")) == []
    clean = parse_config({**raw, "output": str(tmp_path / "clean")})
    assert run(clean, progress=False, log=lambda _m: None).exit_code == 0
    assert outputs(root) == outputs(tmp_path / "clean")


@pytest.mark.parametrize("second, overlapped", [({"start": 3, "end": 4.5}, True),
                                                ({"start": 2, "end": 4.5}, False)],
                         ids=["disjoint-parts", "overlapping-parts"])
def test_segments_downloaded_one_by_one(http_server, tmp_path, shared_models, second, overlapped):
    """Two downloaded parts are sampled one after another and merged by time; parts holding the
    same moment run the stages one after another (a shared frame name: the later file wins)."""
    pytest.importorskip("imageio_ffmpeg", reason="needs an ffmpeg binary (pip install imageio-ffmpeg)")
    http_server.add_file("/astronaut.mp4", Path(__file__).resolve().parents[2] / "demo" / "videos"
                         / "astronaut_zoom.mp4")
    raw = config(tmp_path, shared_models, sources=[
        {"url": http_server.url("/astronaut.mp4"), "label": "astronaut",
         "segments": [{"start": 0.5, "end": 2.5, "label": "early"}, second]}])
    cfg = parse_config(raw)
    assert run(cfg, progress=False, log=lambda _m: None).exit_code == 0
    assert len(list((cfg.output_dir / "videos").glob("*.mp4"))) == 2
    assert ["overlapped" in m for m in sample_markers(cfg.output_dir)] == [overlapped]
    first = outputs(cfg.output_dir)
    assert any(k.startswith("crops/") and k.endswith(".jpg") for k in first)
    run(cfg, force=["detect"], progress=False, log=lambda _m: None)
    assert outputs(cfg.output_dir) == first
