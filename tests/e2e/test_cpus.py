"""The thread budget in a whole run: one source with ``workers: 4`` gets every core."""
from __future__ import annotations

import pytest

from helpers.support import DEMO, in_subprocess


@pytest.mark.slow  # a whole run
def test_fewer_sources_than_workers_get_the_idle_workers_cores(tmp_path):
    """``workers: 4`` with one source: that source runs with every available core, not a quarter
    of them (the workers that never start leave no cores idle)."""
    video = str(DEMO / "astronaut_zoom.mp4")
    out = in_subprocess(f"""
        import os, cv2
        from pipeline.config.load import parse_config
        from pipeline.exec.cpus import available_cpus
        from pipeline.runner.run import run
        config = parse_config({{"name": "t", "output": {str(tmp_path / "out")!r}, "workers": 4,
                               "sources": [{{"path": {video!r}}}]}})
        report = run(config, progress=False, log=lambda line: None)
        print(report.exit_code, cv2.getNumThreads() == available_cpus(),
              os.environ["OMP_NUM_THREADS"] == str(available_cpus()))
    """)
    assert out == "0 True True"
