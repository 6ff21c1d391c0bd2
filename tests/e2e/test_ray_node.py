"""The run's own local Ray instance losing its node: the raylet killed mid-run (as the OOM
killer does) stops the run in one line, frees the output folder, and the same command resumes.

Apart from tests/e2e/test_ray.py (which shares one Ray instance between its tests): this run
starts a Ray instance of its own twice and waits for Ray to notice a dead node, the longest of
the Ray tests; in a file of its own it runs beside them, not after them, on another pytest worker.
"""
from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from helpers.demo import demo_config
from helpers.local_ray import cli_env
from helpers.processes import children

pytestmark = [
    pytest.mark.ray, pytest.mark.slow,
    pytest.mark.skipif(importlib.util.find_spec("ray") is None,
                       reason='Ray is not installed: pip install -e ".[ray]" to run the ray '
                              "executor tests on a local Ray instance"),
    pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="finds Ray's processes in /proc"),
]

RAY = {"kind": "ray"}


def _raylet_of(driver: int) -> int | None:
    """The raylet of the Ray instance the process ``driver`` started (Linux: through /proc)."""
    for pid in children(driver):
        try:
            if "raylet" in Path(f"/proc/{pid}/cmdline").read_text():
                return pid
        except OSError:
            continue
    return None


def _running_units(raylet: int) -> list[int]:
    found = []
    for pid in children(raylet):
        try:
            if Path(f"/proc/{pid}/cmdline").read_text().startswith("ray::_run_unit"):
                found.append(pid)
        except OSError:
            continue
    return found


def test_a_dead_ray_node_stops_the_run_with_one_line_and_frees_the_output(tmp_path):
    """The raylet of the run's own Ray instance is killed mid-run (as the OOM killer does): the
    run says so in one line with how to resume, exits 1 and leaves no run.lock; the same command
    then finishes the run."""
    config_file = tmp_path / "c.yaml"
    config_file.write_text(yaml.safe_dump(demo_config(tmp_path, "out", executor=RAY,
                                                      sample={"every": 0.2})))
    command = [sys.executable, "-m", "pipeline", "run", str(config_file), "-q"]
    proc = subprocess.Popen(command, cwd=tmp_path, env=cli_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    deadline, raylet = time.monotonic() + 240, None
    while proc.poll() is None and time.monotonic() < deadline and not (
            (raylet := _raylet_of(proc.pid)) and _running_units(raylet)):
        time.sleep(0.05)
    assert proc.poll() is None and raylet is not None, proc.communicate()
    os.kill(raylet, signal.SIGKILL)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 1, (out, err)
    assert err.splitlines()[-1] == (
        "error: executor: the Ray node of this run died (its raylet stopped: killed, or out of "
        "memory); finished units are kept: run the same command again to resume"), err
    assert "Traceback" not in err
    assert not (tmp_path / "out" / "run.lock").exists()
    resumed = subprocess.run(command, cwd=tmp_path, env=cli_env(), capture_output=True, text=True,
                             timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert "sources: 3 done" in resumed.stdout
