"""Reliability promises: bad input never stops the run, Ctrl-C and full disks leave a resumable
state, hostile names never escape the output folder, workers change nothing."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from pipeline.config.load import parse_config
from pipeline.runner.run import run
from helpers.processes import finished, stop_and_wait, wait_while_running
from helpers.support import cli

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "demo" / "videos"


pytestmark = pytest.mark.slow  # whole runs: workers, kills, full disk, hostile sources


def write_video(path: Path, frames: int, size: tuple[int, int], fps: float = 10.0) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
    rng = np.random.default_rng(0)
    for _ in range(frames):
        writer.write(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8))
    writer.release()
    return path


def manifest_rows(root: Path) -> list[str]:
    return (root / "manifest.csv").read_text().splitlines()


def test_workers_give_the_same_dataset_as_one(tmp_path):
    sources = [{"path": str(DEMO / n)} for n in sorted(os.listdir(DEMO))]
    one = parse_config({"output": str(tmp_path / "one"), "sources": sources, "workers": 1})
    two = parse_config({"output": str(tmp_path / "two"), "sources": sources, "workers": 2})
    assert run(one, progress=False).exit_code == 0
    report = run(two, progress=False)
    assert report.exit_code == 0 and len(report.outcomes) == 3
    assert manifest_rows(tmp_path / "one") == manifest_rows(tmp_path / "two")


def test_bad_local_sources_fail_alone(tmp_path):
    good = DEMO / "hopper_pan.mp4"
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "empty.mp4").write_bytes(b"")
    (bad / "text.mp4").write_text("not a video at all\n" * 100)
    whole = (DEMO / "astronaut_zoom.mp4").read_bytes()
    (bad / "truncated.mp4").write_bytes(whole[: len(whole) // 3])
    one = write_video(tmp_path / "one_frame.mp4", 1, (320, 240))
    portrait = write_video(tmp_path / "portrait.mp4", 5, (360, 640))
    big = write_video(tmp_path / "uhd.mp4", 3, (3840, 2160), fps=1)
    sources = [{"path": str(good)}, {"path": str(bad / "empty.mp4")}, {"path": str(bad / "text.mp4")},
               {"path": str(bad / "truncated.mp4")}, {"path": str(one)}, {"path": str(portrait)},
               {"path": str(big)}, {"path": str(tmp_path / "missing.mp4")},
               {"path": str(DEMO / "cameraman_hopper_pan.mp4"), "segments": [{"start": 60}]}]
    report = run(parse_config({"output": str(tmp_path / "out"), "sources": sources}), progress=False)
    assert report.exit_code == 1
    by_name = {o.sid.split("-")[1]: o for o in report.outcomes}
    assert by_name["hopper_pan"].ok and by_name["one_frame"].ok
    assert by_name["portrait"].ok and by_name["uhd"].ok
    assert by_name["one_frame"].counts["frames"] == 1
    assert by_name["uhd"].counts["frames"] == 3
    expected = {"empty": ("download", "not-a-video"), "text": ("download", "not-a-video"),
                "missing": ("download", "not-found"),
                "cameraman_hopper_pan": ("sample", "config")}
    for name, (stage, kind) in expected.items():
        o = by_name[name]
        assert (o.failed_stage, o.error_class) == (stage, kind), (name, o.message)
    assert by_name["empty"].message.endswith("empty file (0 bytes)")
    assert by_name["cameraman_hopper_pan"].message.startswith(
        "sources.8.segments.0: starts at 60 s, after the end of the video (6.0 s)")
    # a truncated file either yields its decodable frames or fails cleanly, never hangs
    truncated = by_name["truncated"]
    assert truncated.ok or truncated.error_class == "not-a-video"
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["sources"]["failed"] == len(report.failed) >= 4


def test_bad_remote_sources_fail_alone(http_server, tmp_path):
    http_server.add_file("/ok.mp4", DEMO / "hopper_pan.mp4")
    http_server.forbidden("/forbidden.mp4")
    http_server.drop("/cut.mp4", after_bytes=5000, drop_ranged=True, file=DEMO / "hopper_pan.mp4")
    http_server.add_file("/site/a.mp4", DEMO / "astronaut_zoom.mp4")
    http_server.not_found("/site/gone.mp4")
    http_server.page("/site/list.html", "<html><head><title>Two</title></head><body>"
                     "<video src='a.mp4'></video><video src='gone.mp4'></video></body></html>")
    sources = [{"url": http_server.url(p)} for p in ("/ok.mp4", "/forbidden.mp4", "/cut.mp4",
                                                     "/site/list.html")]
    cfg = parse_config({"output": str(tmp_path / "out"), "sources": sources,
                        "download": {"retries": 1, "socket_timeout": 2}})
    report = run(cfg, progress=False)
    assert report.exit_code == 1
    ok = sorted(o.sid.split("-")[1] for o in report.outcomes if o.ok)
    assert ok == ["list", "ok"], [(o.sid, o.message) for o in report.outcomes]
    classes = sorted((o.failed_stage, o.error_class) for o in report.failed)
    assert classes == [("download", "network"), ("download", "unavailable"), ("download", "unavailable")]


def _start(config_file: Path, cwd: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "pipeline", "run", str(config_file), "-q"],
                            cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.mark.parametrize("workers", [1, 2])
def test_ctrl_c_stops_quickly_and_resumes(tmp_path, workers):
    videos = tmp_path / "videos"
    videos.mkdir()
    for i in range(4):
        shutil.copy(DEMO / "hopper_pan.mp4", videos / f"v{i}.mp4")
    raw = {"output": str(tmp_path / "out"), "sources": [{"path": str(videos)}],
           "sample": {"every": 0.25}, "workers": workers}
    config_file = tmp_path / "c.yaml"
    config_file.write_text(yaml.safe_dump(raw))
    proc = _start(config_file, tmp_path)
    root = tmp_path / "out"
    to_work = wait_while_running(lambda: bool(finished(root / "state" / "sample")), proc,
                                 "a source's frames sampled")
    err = stop_and_wait(proc, signal.SIGINT, 5.0, to_work)
    assert proc.returncode == 130, err
    assert "run the same command again to resume" in err
    assert "Traceback" not in err
    assert not (root / "run.lock").exists()
    assert not list(root.glob("*/.*.tmp")), "nothing half-written is left"
    resumed = subprocess.run([sys.executable, "-m", "pipeline", "run", str(config_file), "-q"],
                             cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    summary = json.loads((root / "summary.json").read_text())
    assert summary["stages"]["sample"]["skipped"] >= 1 and summary["sources"]["done"] == 4


def _mount_tmpfs(folder: Path, size: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here ({done.stderr.strip()}): needs root")


@pytest.fixture
def small_disk(tmp_path):
    if shutil.which("mount") is None or os.geteuid() != 0:
        pytest.skip("simulating a full or read-only disk needs root and mount")
    folder = tmp_path / "disk"
    _mount_tmpfs(folder, "600k")
    yield folder
    subprocess.run(["umount", "-l", str(folder)], capture_output=True)


def test_full_disk_stops_cleanly_and_a_later_run_recovers(tmp_path, small_disk):
    raw = {"output": str(small_disk / "out"),
           "sources": [{"path": str(DEMO / n)} for n in sorted(os.listdir(DEMO))],
           "sample": {"every": 0.2, "quality": 100}}
    config_file = tmp_path / "c.yaml"
    config_file.write_text(yaml.safe_dump(raw))
    full = cli("run", str(config_file), "-q", cwd=tmp_path, timeout=300)
    assert full.returncode == 1, full.stderr
    assert "is full (No space left on device" in full.stderr and "run the same command again" in full.stderr
    assert "Traceback" not in full.stderr
    assert not (small_disk / "out" / "run.lock").exists()
    subprocess.run(["mount", "-o", "remount,size=64m", str(small_disk)], check=True)
    again = cli("run", str(config_file), "-q", cwd=tmp_path, timeout=300)
    assert again.returncode == 0, again.stderr
    assert "3 done" in again.stdout


def test_read_only_output_fails_with_a_clear_message(tmp_path, small_disk):
    subprocess.run(["mount", "-o", "remount,size=64m", str(small_disk)], check=True)
    raw = {"output": str(small_disk / "out"), "sources": [{"path": str(DEMO / "hopper_pan.mp4")}]}
    config_file = tmp_path / "c.yaml"
    config_file.write_text(yaml.safe_dump(raw))
    assert cli("run", str(config_file), "-q", cwd=tmp_path, timeout=300).returncode == 0
    subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)
    raw["crop"] = {"padding": 0.5}  # work to do, on a disk that refuses it
    config_file.write_text(yaml.safe_dump(raw))
    ro = cli("run", str(config_file), "-q", cwd=tmp_path, timeout=300)
    assert ro.returncode == 1 and "the file system is read-only" in ro.stderr, ro.stderr
    subprocess.run(["mount", "-o", "remount,rw", str(small_disk)], check=True)
    assert cli("run", str(config_file), "-q", cwd=tmp_path, timeout=300).returncode == 0


def test_hostile_names_stay_inside_the_output(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    clip = (DEMO / "hopper_pan.mp4").read_bytes()
    names = [b"evil..%2F..%2F.mp4", b"<script>alert(1)<%2Fscript>.mp4", b"CON.mp4",
             b"\xff\xfe not utf8.mp4", b"new\nline.mp4", b"x" * 240 + b".mp4"]
    for raw_name in names:
        (Path(os.fsdecode(bytes(folder)) if False else folder) / os.fsdecode(raw_name)).write_bytes(clip)
    before = set(os.listdir(tmp_path))
    cfg = parse_config({"output": str(tmp_path / "out"), "sources": [{"path": str(folder)}],
                        "sample": {"every": 2.0}})
    report = run(cfg, progress=False)
    assert report.exit_code == 0 and len(report.outcomes) == len(names)
    assert set(os.listdir(tmp_path)) - before == {"out"}
    for o in report.outcomes:
        assert o.sid.isascii() and len(o.sid) <= 80 and "/" not in o.sid and "\n" not in o.sid
    written = list((tmp_path / "out").rglob("*"))
    assert written
    for path in written:
        name = path.name
        assert name.isascii() and len(name.encode()) <= 255
        assert not any(c in name for c in '<>:"\\|?*\n')
        assert name.split(".")[0].upper() not in {"CON", "PRN", "AUX", "NUL"}
