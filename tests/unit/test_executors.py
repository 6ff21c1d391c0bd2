"""Executors without Ray: the local one maps like before, and choosing ray without Ray installed
is a clear error before anything is written (``--executor`` in whole runs:
tests/e2e/test_executors.py; the ray executor on a real Ray instance: tests/e2e/test_ray.py)."""
from __future__ import annotations

import sys
from contextlib import closing
from pathlib import Path

import pytest

from pipeline.config.load import parse_config
from pipeline.exec.base import ExecutorError
from pipeline.exec.local import LocalExecutor
from pipeline.exec.executors import open_executor
from pipeline.runner.run import run

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "demo" / "videos"


@pytest.mark.parametrize("workers", [1, 2])
def test_local_executor_maps_fn_over_items_with_common_arguments(workers):
    with LocalExecutor(workers) as ex:
        assert ex.inline == (workers == 1)
        with closing(ex.map(pow, [1, 2, 3, 4], (3,))) as results:
            assert sorted(results) == [1, 8, 27, 64]


def test_open_executor_follows_the_config():
    local = parse_config({"sources": [{"path": "a.mp4"}], "workers": 3})
    assert isinstance(open_executor(local, Path("x")), LocalExecutor)
    ray = parse_config({"sources": [{"path": "a.mp4"}], "executor": {"kind": "ray"}})
    assert open_executor(ray, Path("x")).kind == "ray"  # not started: nothing imported yet


def test_ray_without_ray_installed_is_a_clear_error_before_any_work(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # what `import ray` does when it is missing
    cfg = parse_config({"output": str(tmp_path / "out"), "sources": [{"path": str(DEMO / "hopper_pan.mp4")}],
                        "executor": {"kind": "ray", "address": "auto"}})
    with pytest.raises(ExecutorError, match=r"needs Ray, which is not installed here: "
                                            r'pip install -e "\.\[ray\]"'):
        run(cfg, progress=False)
    assert not (tmp_path / "out").exists(), "nothing was written"
