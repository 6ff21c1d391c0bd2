"""``python -m pipeline export`` before any run: a usage error. (Each format read back by its
consumer: tests/e2e/test_export.py.)"""
from __future__ import annotations

import yaml

from helpers.support import cli


def test_export_before_a_run_is_a_usage_error(tmp_path):
    (tmp_path / "run.yaml").write_text(yaml.safe_dump(
        {"output": "out", "sources": [{"path": str(tmp_path / "a.mp4")}]}))
    result = cli("export", "run.yaml", "--format", "yolo", cwd=tmp_path)
    assert result.returncode == 2
    assert "no manifest" in result.stderr and "run the pipeline first" in result.stderr
    assert not (tmp_path / "out" / "exports").exists()
