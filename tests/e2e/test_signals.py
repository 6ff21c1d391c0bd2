"""SIGTERM (docker stop, systemd, Kubernetes, Ray) and SIGHUP (a closed terminal) stop a run as
Ctrl-C does, and pool workers never outlive the run's process, even when it is SIGKILLed.

Each test drives ``python -m pipeline run`` in a subprocess, in a temp working folder with a
relative output, and looks at what a user would notice: exit code, message, lock, scratch
files, the processes left, and what the next run makes of the folder.
"""
from __future__ import annotations

import csv
import fcntl
import json
import os
import pty
import shutil
import signal
import subprocess
import sys
import termios
import time
from pathlib import Path

import pytest
import yaml

from helpers.processes import alive, children, finished, stop_and_wait, survivors, wait_while_running

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "demo" / "videos"

pytestmark = [pytest.mark.slow,  # runs stopped by signals, in subprocesses
              pytest.mark.skipif(not Path("/proc/self/stat").exists(),
                                 reason="finds the run's worker processes through /proc (Linux)")]


def project(tmp: Path, workers: int, output: str = "out", every: float = 1.0) -> Path:
    """Four short videos and a config with the default relative output folder."""
    videos = tmp / "videos"
    if not videos.exists():
        videos.mkdir()
        for i, name in enumerate(["hopper_pan", "astronaut_zoom", "cameraman_hopper_pan", "hopper_pan"]):
            shutil.copy(DEMO / f"{name}.mp4", videos / f"v{i}.mp4")
    config = tmp / f"{output}.yaml"
    config.write_text(yaml.safe_dump({"output": output, "sources": [{"path": "videos"}],
                                      "sample": {"every": every}, "workers": workers}))
    return config


def command(config: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "pipeline", "run", config.name, *extra]


def wait_for_work(root: Path, proc: subprocess.Popen, workers: int) -> tuple[list[int], float]:
    """Wait until a source's frames are sampled (units are running), with the pool started;
    returns the run's child processes then, and the seconds the run took to get there."""
    kids: list[int] = []

    def at_work() -> bool:
        kids[:] = children(proc.pid)
        return bool(finished(root / "state" / "sample")) and (len(kids) >= workers or workers == 1)

    took = wait_while_running(at_work, proc, "a source's frames sampled, the pool started")
    return kids, took


def assert_clean_stop(root: Path) -> None:
    assert not (root / "run.lock").exists(), "the lock is released"
    assert not list(root.glob("**/.*.tmp")), "nothing half-written is left"


def assert_resumes(config: Path, root: Path) -> None:
    """The same command finishes the run; no healthy source is recorded as failed."""
    done = subprocess.run(command(config, "-q"), cwd=config.parent, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    summary = json.loads((root / "summary.json").read_text())
    assert summary["sources"] == {"total": 4, "done": 4, "failed": 0}
    assert summary["stages"]["sample"]["skipped"] >= 1
    assert not list((root / "state").rglob("*.error.json"))


@pytest.mark.parametrize("workers", [1, 2])
@pytest.mark.parametrize("sig,code", [(signal.SIGTERM, 143), (signal.SIGHUP, 129)],
                         ids=["SIGTERM", "SIGHUP"])
def test_sigterm_and_sighup_stop_the_run_like_ctrl_c(tmp_path, sig, code, workers):
    config = project(tmp_path, workers)
    root = tmp_path / "out"
    proc = subprocess.Popen(command(config, "-q"), cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    kids, to_work = wait_for_work(root, proc, workers)
    err = stop_and_wait(proc, sig, 10.0, to_work)
    assert proc.returncode == code, err
    assert f"interrupted by {sig.name}" in err and "run the same command again to resume" in err
    assert "Traceback" not in err
    assert survivors(kids, within=5) == [], "no worker outlives the run"
    assert_clean_stop(root)
    assert_resumes(config, root)


def _controlling_terminal() -> None:
    """In the child: a session of its own whose controlling terminal is its stdin (the pty)."""
    os.setsid()
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


def test_closing_the_terminal_stops_the_run_like_ctrl_c(tmp_path):
    """The real thing behind SIGHUP: the terminal goes away (progress bars on, so the run also
    writes to a terminal that is gone)."""
    config = project(tmp_path, workers=2)
    root = tmp_path / "out"
    master, slave = pty.openpty()
    proc = subprocess.Popen(command(config), cwd=tmp_path, stdin=slave, stdout=slave, stderr=slave,
                            preexec_fn=_controlling_terminal)
    os.close(slave)
    try:
        kids, _ = wait_for_work(root, proc, workers=2)
    finally:
        os.close(master)  # the terminal window closes
    assert proc.wait(timeout=300) == 129
    assert survivors(kids, within=5) == [], "no worker outlives the run"
    assert_clean_stop(root)
    assert_resumes(config, root)


def snapshot(root: Path) -> tuple:
    dataset = sorted(str(p.relative_to(root)) for p in (root / "dataset").rglob("*") if p.is_file())
    with open(root / "manifest.csv", newline="") as f:
        return dataset, [tuple(r.items()) for r in csv.DictReader(f)]


def test_workers_die_with_a_killed_parent_and_a_restart_loses_nothing(tmp_path):
    # units long enough (12 frames a source) that an orphan would still be at work seconds later
    reference = project(tmp_path, workers=2, output="reference", every=0.5)
    done = subprocess.run(command(reference, "-q"), cwd=tmp_path, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr
    config = project(tmp_path, workers=2, every=0.5)
    root = tmp_path / "out"
    proc = subprocess.Popen(command(config, "-q"), cwd=tmp_path, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    kids, _ = wait_for_work(root, proc, workers=2)
    proc.kill()
    proc.wait()
    assert survivors(kids, within=2) == [], "the workers die with their parent"
    assert_resumes(config, root)  # at once: no orphan writes into the folder meanwhile
    assert snapshot(root) == snapshot(tmp_path / "reference")


def test_the_portable_parent_watch_ends_an_orphan(tmp_path):
    """Where prctl is missing (macOS), a worker polls its parent's pid instead."""
    # it says when it watches: on a loaded machine its imports alone can take seconds
    watcher = ("import sys; from pipeline.exec.local import _watch_parent; "
               "print('watching', flush=True); _watch_parent(int(sys.argv[1]))")
    middle = subprocess.Popen(
        [sys.executable, "-c",
         "import os, subprocess, sys, time\n"
         f"p = subprocess.Popen([sys.executable, '-c', {watcher!r}, str(os.getpid())])\n"
         "print(p.pid, flush=True)\n"
         "time.sleep(120)\n"],
        cwd=REPO, stdout=subprocess.PIPE, text=True)
    orphan = int(middle.stdout.readline())
    assert middle.stdout.readline().strip() == "watching"
    time.sleep(1.0)
    assert alive(orphan), "it runs while its parent lives"
    middle.kill()
    middle.wait()
    assert survivors([orphan], within=3) == [], "it ends once its parent is gone"


def test_under_nohup_a_run_outlives_its_terminal(tmp_path):
    """SIGHUP ignored by the caller (``nohup``) stays ignored: the run goes on."""
    config = project(tmp_path, workers=1, every=0.1)  # long enough to outlast the 2 s wait
    root = tmp_path / "out"
    proc = subprocess.Popen(["nohup", *command(config, "-q")], cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for_work(root, proc, workers=1)
    proc.send_signal(signal.SIGHUP)
    time.sleep(2.0)
    assert proc.poll() is None, proc.communicate()
    proc.send_signal(signal.SIGTERM)  # the run still stops cleanly on SIGTERM
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 143 and "interrupted by SIGTERM" in err, (out, err)
    assert_clean_stop(root)


def test_a_stop_signal_cancels_an_abort_timer_armed_before_it():
    """Ray's C++ core chains SIGTERM through abseil's failure handler, which arms a 3 s SIGALRM
    that aborts the process; the run's own handler cancels it, so a cleanup slower than 3 s
    (a loaded machine) still ends in the resume hint, not a stack trace."""
    from pipeline.exec.signals import Stopped, stop_on_signals

    if not hasattr(signal, "alarm"):
        pytest.skip("no SIGALRM on this platform")
    previous = signal.signal(signal.SIGALRM, signal.SIG_IGN)
    try:
        with pytest.raises(Stopped), stop_on_signals():
            signal.alarm(30)  # as abseil's handler does before chaining to ours
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)  # the handler raises here
        assert signal.alarm(0) == 0  # no timer left
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
