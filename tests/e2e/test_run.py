"""End to end on the demo videos shipped with the project: dataset, manifest, resume, lock, CLI."""
from __future__ import annotations

import csv
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import pytest

from pipeline.core import records
from pipeline.config.load import parse_config
from pipeline.runner.run import run
from pipeline.runner.status import status
from pipeline.state.lock import LockError, RunLock
from helpers.demo import make_config
from helpers.processes import pause_when_finished
from helpers.support import cli, read_manifest

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "demo" / "videos"

pytestmark = pytest.mark.slow  # whole runs of the demo videos


def stages_of(root: Path) -> dict:
    return json.loads((root / "summary.json").read_text())["stages"]


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("demo")
    cfg = parse_config(make_config(tmp))
    report = run(cfg, progress=False)
    return tmp, cfg, report


def test_demo_makes_a_labelled_dataset(demo_run):
    tmp, cfg, report = demo_run
    root = cfg.output_dir
    assert report.exit_code == 0
    rows = read_manifest(root)
    labels = {r["label"] for r in rows}
    assert labels == {"astronaut", "hopper", "cameraman"}
    # every manifest row points to an existing crop and dataset file, and vice versa
    crops_on_disk = {str(p.relative_to(root)) for p in (root / "crops").rglob("*.jpg")}
    assert {r["file"] for r in rows} == crops_on_disk
    dataset_files = {str(p.relative_to(root)) for p in (root / "dataset").rglob("*.jpg")}
    assert {r["dataset_file"] for r in rows} == dataset_files
    for r in rows:
        assert r["dataset_file"] == f"dataset/{r['split']}/{r['label']}/{Path(r['file']).name}"
        img = cv2.imread(str(root / r["file"]))
        assert img.shape == (224, 224, 3)
        assert float(r["score"]) >= 0.7 and r["class"] == "face"
        assert r["source_url"].startswith("file://") and r["title"].endswith(".mp4")
        assert r["video_width"] == "640" and r["video_height"] == "360"
    # crop ids are deterministic: <sid>_<t_ms:09d>_<k>
    first = rows[0]
    t_ms = round(float(first["t_s"]) * 1000)
    assert first["crop_id"] == f"{first['source_id']}_{t_ms:09d}_0"


def test_labels_follow_segments(demo_run):
    tmp, cfg, _ = demo_run
    rows = [r for r in read_manifest(cfg.output_dir) if "cameraman" in r["source_id"]]
    assert rows
    for r in rows:
        t = float(r["t_s"])
        assert (r["label"] == "cameraman") == (t < 1.7)
        assert t < 1.7 or t >= 4.5, "frames outside the segments must not be sampled"


def test_splits_group_sources_and_metadata_reads_back(demo_run):
    tmp, cfg, _ = demo_run
    root = cfg.output_dir
    rows = read_manifest(root)
    split_of = {}
    assert rows
    for r in rows:
        assert split_of.setdefault(r["source_id"], r["split"]) == r["split"]
    assert sorted(split_of.values()) == ["test", "train", "val"]
    # torchvision-style ImageFolder: <split>/<class>/<image>; the classes are the labels
    for split in ("train", "val", "test"):
        classes = sorted(p.name for p in (root / "dataset" / split).iterdir() if p.is_dir())
        assert classes == sorted({r["label"] for r in rows if r["split"] == split})
        with open(root / "dataset" / split / "metadata.csv", newline="") as f:
            meta = list(csv.DictReader(f))
        assert {m["file_name"] for m in meta} == {
            str(Path(r["dataset_file"]).relative_to(f"dataset/{split}")) for r in rows if r["split"] == split}
        for m in meta:
            assert (root / "dataset" / split / m["file_name"]).parent.name == m["label"]


def test_hugging_face_imagefolder_loads_it(demo_run):
    datasets = pytest.importorskip("datasets", reason="Hugging Face datasets not installed")
    tmp, cfg, _ = demo_run
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    ds = datasets.load_dataset("imagefolder", data_dir=str(cfg.output_dir / "dataset"),
                               cache_dir=str(tmp / "hf-cache"))
    rows = read_manifest(cfg.output_dir)
    assert sum(len(ds[s]) for s in ds) == len(rows)
    assert set(ds["train"].column_names) >= {"image", "label", "crop_id", "source_url", "t_s"}
    assert set(ds["train"]["label"]) == {r["label"] for r in rows if r["split"] == "train"}


def test_parquet_manifest_matches_csv(demo_run):
    pq = pytest.importorskip("pyarrow.parquet", reason="pyarrow not installed")
    tmp, cfg, _ = demo_run
    table = pq.read_table(cfg.output_dir / "manifest.parquet").to_pylist()
    jsonl = [json.loads(line) for line in (cfg.output_dir / "manifest.jsonl").read_text().splitlines()]
    assert table == jsonl and len(table) == len(read_manifest(cfg.output_dir))


def test_outputs_carry_the_columns_of_the_crop_record(demo_run):
    """crops.jsonl, the three manifests and metadata.csv have exactly the columns (and the
    types) that pipeline.core.records defines."""
    _, cfg, _ = demo_run
    root = cfg.output_dir
    crop_rows = [json.loads(line) for path in sorted((root / "crops").glob("*/crops.jsonl"))
                 for line in path.read_text().splitlines()]
    assert crop_rows and all(set(row) == set(records.CROP_COLUMNS) for row in crop_rows)
    with open(root / "manifest.csv", newline="") as f:
        assert tuple(next(csv.reader(f))) == records.MANIFEST_COLUMNS
    metadata = sorted((root / "dataset").glob("*/metadata.csv"))
    assert metadata
    for path in metadata:
        with open(path, newline="") as f:
            assert tuple(next(csv.reader(f))) == records.METADATA_COLUMNS
    accepted = {str: str, int: int, float: (int, float)}
    lines = (root / "manifest.jsonl").read_text().splitlines()
    assert len(lines) == len(read_manifest(root)) > 0
    for line in lines:
        row = json.loads(line)
        assert tuple(row) == records.MANIFEST_COLUMNS
        for name, value in row.items():
            assert value is None or isinstance(value, accepted[records.BY_NAME[name].type]), name


def test_rerun_skips_everything_and_gives_the_same_dataset(tmp_path):
    cfg = parse_config(make_config(tmp_path))
    run(cfg, progress=False)
    first = read_manifest(cfg.output_dir)
    report = run(cfg, progress=False)
    assert all(set(o.stages.values()) == {"skipped"} for o in report.outcomes)
    assert stages_of(cfg.output_dir)["detect"] == {"ran": 0, "skipped": 3, "failed": 0}
    assert read_manifest(cfg.output_dir) == first


def test_changing_crop_settings_reuses_detections(tmp_path):
    cfg = parse_config(make_config(tmp_path))
    run(cfg, progress=False)
    root = cfg.output_dir
    det_markers = {p: p.stat().st_mtime_ns for p in (root / "state" / "detect").glob("*.json")}
    changed = parse_config(make_config(tmp_path, crop={"padding": 0.6, "size": 128}))
    run(changed, progress=False)
    assert stages_of(root) == {
        "download": {"ran": 0, "skipped": 3, "failed": 0},
        "sample": {"ran": 0, "skipped": 3, "failed": 0},
        "detect": {"ran": 0, "skipped": 3, "failed": 0},
        "crop": {"ran": 3, "skipped": 0, "failed": 0},
    }
    assert {p: p.stat().st_mtime_ns for p in det_markers} == det_markers
    assert {(r["out_w"], r["out_h"]) for r in read_manifest(root)} == {("128", "128")}


def test_force_redoes_a_stage_and_the_ones_after(tmp_path):
    cfg = parse_config(make_config(tmp_path))
    run(cfg, progress=False)
    run(cfg, progress=False, force=["detect"])
    s = stages_of(cfg.output_dir)
    assert s["sample"]["skipped"] == 3 and s["detect"]["ran"] == 3 and s["crop"]["ran"] == 3
    with pytest.raises(ValueError, match="unknown stage"):
        run(cfg, progress=False, force=["nonsense"])


def test_failed_source_does_not_stop_others_and_is_retried_on_request(tmp_path):
    raw = make_config(tmp_path)
    broken = tmp_path / "videos" / "broken.mp4"
    broken.write_text("this is not a video")
    raw["sources"].append({"path": str(broken)})
    cfg = parse_config(raw)
    report = run(cfg, progress=False)
    assert report.exit_code == 1
    [failed] = report.failed
    assert failed.failed_stage == "download" and failed.error_class == "not-a-video"
    assert len([o for o in report.outcomes if o.ok]) == 3
    error = json.loads((cfg.output_dir / "state" / "download" / f"{failed.sid}.error.json").read_text())
    assert error["class"] == "not-a-video" and "broken.mp4" in error["message"]
    summary = json.loads((cfg.output_dir / "summary.json").read_text())
    assert summary["sources"] == {"total": 4, "done": 3, "failed": 1}
    # not retried by default...
    again = run(cfg, progress=False)
    assert "recorded earlier" in again.failed[0].message
    # ...but with retry_failed, and it succeeds once the file is fixed
    shutil.copy(DEMO / "hopper_pan.mp4", broken)
    os.utime(broken, ns=(time.time_ns(), time.time_ns() - 10**9))
    fixed = run(cfg, progress=False, retry_failed=True)
    assert fixed.exit_code == 0
    assert {o.sid: o.stages["download"] for o in fixed.outcomes}[failed.sid] == "ran"


def test_status_reports_per_stage(tmp_path):
    raw = make_config(tmp_path)
    raw["sources"].append({"path": str(tmp_path / "missing.mp4")})
    cfg = parse_config(raw)
    before = status(cfg)
    assert len(before.stages["download"]["pending"]) == 3
    run(cfg, progress=False)
    after = status(cfg)
    assert {s: len(g["done"]) for s, g in after.stages.items()} == dict.fromkeys(after.stages, 3)
    assert [f[1] for f in after.stages["download"]["failed"]] == ["not-found"]


def test_lock_refuses_a_second_run_and_takes_over_a_stale_one(tmp_path):
    cfg = parse_config(make_config(tmp_path))
    root = cfg.output_dir
    root.mkdir(parents=True)
    with RunLock(root):
        with pytest.raises(LockError, match=rf"pid {os.getpid()} on .*started"):
            run(cfg, progress=False)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (root / "run.lock").write_text(json.dumps({"pid": dead.pid, "host": os.uname().nodename,
                                               "started": "earlier"}))
    assert run(cfg, progress=False).exit_code == 0
    assert not (root / "run.lock").exists()


def test_killed_run_resumes_to_the_same_result(tmp_path):
    import yaml

    raw = make_config(tmp_path)
    config_file = tmp_path / "c.yaml"
    config_file.write_text(yaml.safe_dump(raw))
    proc = subprocess.Popen([sys.executable, "-m", "pipeline", "run", str(config_file), "-q"],
                            cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    markers = tmp_path / "out" / "state" / "crop"
    deadline = time.monotonic() + 120
    while not (markers.exists() and any(markers.glob("*.json"))) and time.monotonic() < deadline:
        if proc.poll() is not None:
            break
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    resumed = cli("run", str(config_file), "-q", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert "already done" in resumed.stdout
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["stages"]["crop"]["skipped"] >= 1
    # the same as a run that was never interrupted
    clean = parse_config({**raw, "output": str(tmp_path / "clean")})
    run(clean, progress=False)
    assert read_manifest(tmp_path / "out") == read_manifest(tmp_path / "clean")


def test_status_during_a_run_says_it_is_in_progress(tmp_path):
    """The run is paused (SIGSTOP) once its first source is through every stage, so status
    looks at a run that is really in progress, whatever the machine's speed."""
    import yaml

    config_file = tmp_path / "c.yaml"
    config_file.write_text(yaml.safe_dump(make_config(tmp_path)))
    proc = subprocess.Popen([sys.executable, "-m", "pipeline", "run", str(config_file), "-q"],
                            cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env={**os.environ, "PYTHONPATH": str(REPO)})
    pause_when_finished(proc, tmp_path / "out" / "state" / "crop")
    try:
        during = cli("status", str(config_file), cwd=tmp_path)
    finally:
        proc.send_signal(signal.SIGCONT)
    assert proc.wait(timeout=300) == 0
    assert proc.returncode == 0 and during.returncode == 0, during.stderr
    [line] = [x for x in during.stdout.splitlines() if x.startswith("a run is in progress")]
    assert f"pid {proc.pid} on {os.uname().nodename}, started " in line
    assert re.search(r"; [123] of 3 sources through every stage so far$", line), line
    after = cli("status", str(config_file), cwd=tmp_path)
    assert "in progress" not in after.stdout


def test_cli_run_prints_a_summary_and_exit_codes(tmp_path):
    import yaml

    raw = make_config(tmp_path)
    raw["sources"] = raw["sources"][:1] + [{"path": str(tmp_path / "gone.mp4")}]
    config_file = tmp_path / "c.yaml"
    config_file.write_text(yaml.safe_dump(raw))
    res = cli("run", str(config_file), cwd=tmp_path)
    assert res.returncode == 1
    assert "sources: 1 done" in res.stdout and "1 failed" in res.stdout
    assert "gone.mp4" in res.stdout and "[download: not-found]" in res.stdout
    st = cli("status", str(config_file), cwd=tmp_path)
    assert st.returncode == 1 and "crop" in st.stdout and "not-found" in st.stdout  # as run
    bad = tmp_path / "bad.yaml"
    bad.write_text("sources: [{path: x.mp4}]\nsample: {every: 0}\n")
    res = cli("run", str(bad), cwd=tmp_path)
    assert res.returncode == 2 and "sample.every: must be greater than 0 (line 2)" in res.stderr


@pytest.mark.parametrize("fmt", ["png", "webp"])
def test_crop_formats(tmp_path, fmt):
    raw = make_config(tmp_path, crop={"format": fmt, "size": 96, "policy": "largest"})
    raw["sources"] = raw["sources"][:1]
    cfg = parse_config(raw)
    assert run(cfg, progress=False).exit_code == 0
    rows = read_manifest(cfg.output_dir)
    assert rows and all(r["file"].endswith(f".{fmt}") for r in rows)
    img = cv2.imread(str(cfg.output_dir / rows[0]["dataset_file"]))
    assert img is not None and img.shape == (96, 96, 3)


def test_one_worker_frame_bar_has_the_planned_total(tmp_path):
    """On a terminal, the per-source frame bar says how far along it is (``5/5``), not only a
    count: its total is the frames the sampler selects, known before decoding."""
    import fcntl
    import pty
    import struct
    import termios

    shutil.copy(DEMO / "hopper_pan.mp4", tmp_path / "hopper.mp4")
    (tmp_path / "run.yaml").write_text(json.dumps(
        {"name": "bar", "output": "out", "sources": [{"path": "hopper.mp4"}], "sample": {"every": 1.0}}))
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 160, 0, 0))  # bars need a width
    running = subprocess.Popen([sys.executable, "-m", "pipeline", "run", "run.yaml"], cwd=tmp_path,
                               stdout=subprocess.DEVNULL, stderr=follower,
                               env={**os.environ, "PYTHONPATH": str(REPO)})
    os.close(follower)
    shown = b""
    try:
        while chunk := _read(leader):
            shown += chunk
    finally:
        os.close(leader)
    text = shown.decode(errors="replace")
    assert running.wait(timeout=600) == 0, text
    assert re.search(r"sample\+detect\+crop file-hopper-\w+: +0%\|.*\| 0/5 \[", text), text


def _read(fd: int) -> bytes:
    """The next output of a process on a pty; b"" once it has exited and all was read."""
    try:
        return os.read(fd, 65536)
    except OSError:  # Linux: EIO once the writing end is closed and the buffer read
        return b""
