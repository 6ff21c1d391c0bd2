"""The short form of scripts/faults.py: kills at each stage's start, every bad-source case, and
SIGTERM and SIGKILL of a run with two workers, every ownership, damage and odd-config case, every
review-server probe."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow  # tens of pipeline runs in subprocesses


def test_fault_script_quick_form_passes_every_row():
    done = subprocess.run([sys.executable, str(REPO / "scripts" / "faults.py"), "--quick"],
                          capture_output=True, text=True, timeout=1200, cwd=REPO)
    lines = done.stdout.splitlines()
    assert done.returncode == 0, done.stdout + done.stderr[-2000:]
    kills = [line for line in lines if line.startswith("SIGKILL at ")]
    assert len(kills) == 4 and all(line.rstrip().endswith("PASS") for line in kills)
    for case in ("zero-byte file", "HTTP 404", "server stalls (timeout)", "playlist: its unavailable entry",
                 "SIGTERM with workers: 2", "SIGKILL with workers: 2",
                 "output holds user files (no marker)", "user files inside our output, rebuilt dataset",
                 "one crop file deleted", "9-level alias bomb under download.ytdlp",
                 "file inside a folder source, folder first", "rejects.txt in utf-16",
                 "review: /crops/%2e%2e/ (folder listing)", "review: 8 saves at once"):
        assert any(line.startswith(case) and line.rstrip().endswith("PASS") for line in lines), case
    assert not any(line.rstrip().endswith("FAIL") for line in lines)
