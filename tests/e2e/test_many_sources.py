"""Many small sources: what a source costs the run's main process stays the same however many
sources there are (its peak memory, and the CPU time a source adds), as ratios measured in this
test (``scripts/bench.py`` reports the same at N and 10 x N one-second sources)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from helpers.support import DEMO, REPO

pytestmark = pytest.mark.slow  # three whole runs of up to 40 sources


def _run(tmp_path: Path, count: int) -> tuple[float, float]:
    """``python -m pipeline run`` on a folder of ``count`` copies (hard links) of a demo video,
    each its own source, one worker: (CPU seconds, peak RSS in MB) of that process."""
    folder = tmp_path / f"videos{count}"
    folder.mkdir()
    for i in range(count):
        os.link(DEMO / "astronaut_zoom.mp4", folder / f"v{i:03d}.mp4")
    config = tmp_path / f"many{count}.yaml"
    config.write_text(yaml.safe_dump({"name": f"many{count}", "output": f"out{count}",
                                      "sources": [{"path": str(folder), "label": "face"}],
                                      "sample": {"every": 5.0}}))
    proc = subprocess.Popen([sys.executable, "-m", "pipeline", "run", "-q", str(config)],
                            cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            env={**os.environ, "PYTHONPATH": str(REPO)})
    _, status, usage = os.wait4(proc.pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, proc.stderr.read().decode()[-2000:]
    assert len((tmp_path / f"out{count}" / "manifest.csv").read_text().splitlines()) > count
    return usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


@pytest.mark.skipif(sys.platform != "linux", reason="ru_maxrss is in kB on Linux only")
def test_a_source_costs_the_same_with_8_or_40_sources(tmp_path: Path) -> None:
    base_cpu, _ = _run(tmp_path, 1)
    few_cpu, few_mb = _run(tmp_path, 8)
    many_cpu, many_mb = _run(tmp_path, 40)
    few, many = (few_cpu - base_cpu) / 7, (many_cpu - base_cpu) / 39  # CPU a source adds
    assert many <= 1.5 * few, f"{few * 1000:.0f} ms a source with 8 sources, {many * 1000:.0f} with 40"
    assert many_mb <= 1.1 * few_mb, f"peak RSS {few_mb:.0f} MB with 8 sources, {many_mb:.0f} with 40"
