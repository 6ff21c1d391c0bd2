"""What every executor shares: the type of the ``lost`` callback and the errors a run reports."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar


T = TypeVar("T")


Lost = Callable[[Any, BaseException], T]


class ExecutorError(RuntimeError):
    """The executor cannot run units here (Ray missing or unreachable, output not shared).
    Raised before any unit ran."""


class NodeLost(RuntimeError):
    """The Ray node this run's driver talks to died mid-run (its raylet is gone): no unit can
    be run or reported here any more. Finished units are kept; a rerun resumes."""
