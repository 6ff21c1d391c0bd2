"""``--executor`` overrides the config's kind: whole runs through the CLI without Ray installed."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from helpers.support import DEMO


def _cli_without_ray(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    code = ("import sys; sys.modules['ray'] = None\n"
            "from pipeline.cli import main\n"
            f"main({list(args)!r}, prog_name='pipeline')")
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=cwd,
                          timeout=300)


@pytest.mark.slow  # whole runs in subprocesses
def test_cli_executor_flag_overrides_the_config(tmp_path):
    raw = {"output": str(tmp_path / "out"), "sources": [{"path": str(DEMO / "hopper_pan.mp4")}],
           "sample": {"every": 2.0}, "executor": {"kind": "ray", "address": "127.0.0.1:1"}}
    config_file = tmp_path / "c.yaml"
    config_file.write_text(yaml.safe_dump(raw))
    refused = _cli_without_ray("run", str(config_file), "-q", cwd=tmp_path)
    assert refused.returncode == 2, refused.stderr
    assert 'error: executor kind \'ray\' needs Ray' in refused.stderr
    assert 'pip install -e ".[ray]"' in refused.stderr and "Traceback" not in refused.stderr
    assert not (tmp_path / "out").exists()
    local = _cli_without_ray("run", str(config_file), "-q", "--executor", "local", cwd=tmp_path)
    assert local.returncode == 0, local.stderr
    assert json.loads((tmp_path / "out" / "summary.json").read_text())["sources"]["done"] == 1
