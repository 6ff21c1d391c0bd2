"""Executors: where the per-source units run. Each one only maps a plain function over items.

``local``: inline for one worker, else a spawn process pool of ``workers``. ``ray``: the same
function as Ray tasks on a local Ray instance or a cluster, with the output folder on storage
every node shares. Both are used the same way::

    with open_executor(config, root, log) as ex:
        with closing(ex.map(fn, items, common, lost)) as results:
            for result in results:          # as units finish, in any order
                ...

``fn(item, *common)`` must be a module-level function (it is pickled to other processes or
nodes). ``lost(item, exc)`` turns a unit whose worker died for good (Ray: more than
``max_retries`` times) into a result, so one lost unit does not end the run. Closing the results
early (Ctrl-C, SIGTERM, SIGHUP, an error) stops the units still running: the process pool is
terminated, the Ray tasks are cancelled. Pool workers also die with the run's process when it
is killed outright. Nothing here knows what a unit does.
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from .local import LocalExecutor
from .ray import RayExecutor, import_ray


def open_executor(config: Any, root: Path, log: Callable[[str], None] = print):
    """The executor ``config.executor`` asks for (not started yet: use it as a context manager)."""
    if config.executor.kind == "ray":
        return RayExecutor(config.executor, root, log)
    return LocalExecutor(config.workers)


def check_available(kind: str) -> None:
    """Fail early, before anything is written, when the executor's package is missing."""
    if kind == "ray":
        import_ray()
