"""scripts/bench.py --quick: the benchmark runs end to end and prints its table (a smoke test of
the script, on a tiny generated video; its speed ratios are not asserted here)."""
from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

from helpers.support import ffmpeg_exe

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.bench
@pytest.mark.slow
@pytest.mark.skipif(ffmpeg_exe() is None, reason="imageio-ffmpeg is not installed")
def test_bench_quick_prints_the_table(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, str(REPO / "scripts" / "bench.py"), "--quick",
                           "--workdir", str(tmp_path), "--skip", "workers", "--skip", "memory",
                           "--sources", "2"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    out = done.stdout
    for line in ["machine:", "ffmpeg decode-only", "ffmpeg keyframes-only", "ours/decode",
                 "whole pipeline", "every 5 s", "peak RSS main process", "many one-second sources",
                 "| measurement | measured | target |"]:
        assert line in out, out
    table = [line.split(" | ") for line in out.splitlines()
             if line.startswith("| ") and not line.startswith("| measurement")]
    names = [row[0] for row in table]
    for name in ["| anchor: `ffmpeg -vf fps=1`", "| whole run, every 1 s / decode-only",
                 "| whole run, every 5 s / keyframes-only", "| seconds per source, 2 -> 20",
                 "| main process peak RSS, 2 -> 20"]:
        assert any(n.startswith(name) for n in names), names
    assert all(row[3] in ("met", "missed", "-") for row in table), table
    if importlib.util.find_spec("ray") is not None:  # the units spread over the test cluster
        ray = [row[1:4:2] for row in table if row[0].startswith("| ray executor")]
        assert ray == [["2 of 2", "met"]], table
    rows = [line.split() for line in out.splitlines()
            if line.strip().startswith(("0.5 s", "1 s", "5 s", "30 s"))]
    assert [r[0] for r in rows][:4] == ["0.5", "1", "5", "30"]
    assert all({"seek", "sequential"} & set(r) for r in rows)
