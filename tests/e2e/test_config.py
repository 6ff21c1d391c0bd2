"""One rule for validate and run, through the CLI: a source a run would fail is a warning for
validate, and the run does the others."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

from helpers.support import DEMO, cli


@pytest.mark.slow  # a whole run
def test_validate_warns_of_sources_a_run_would_fail_and_run_does_the_others(tmp_path):
    """One rule for validate and run: a missing path or a folder with no videos fails that
    source, not the config (a long run with one deleted file still does the rest)."""
    (tmp_path / "empty").mkdir()
    shutil.copy(DEMO / "astronaut_zoom.mp4", tmp_path / "here.mp4")
    cfg = tmp_path / "c.yaml"
    cfg.write_text("sources: [{path: /nonexistent}, {path: empty}, {path: here.mp4}]\n"
                   "sample: {count: 2}\noutput: out\n")
    res = subprocess.run([sys.executable, "-m", "pipeline", "validate", str(cfg)],
                         capture_output=True, text=True, cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert ": ok (3 sources" in res.stdout
    warnings = [line for line in res.stderr.splitlines() if line.startswith("warning: ")]
    assert len(warnings) == 2, res.stderr
    assert "sources.0.path: no such file or folder: /nonexistent" in warnings[0]
    assert "sources.1.path: no video files in folder empty" in warnings[1]
    assert all("a run fails this source (not-found)" in w for w in warnings)
    ran = cli("run", str(cfg), "-q", cwd=tmp_path)
    assert ran.returncode != 0  # some sources failed
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["sources"]["done"] == 1 and summary["sources"]["failed"] == 2, summary["sources"]
