"""What every executor shares: the ``Executor`` interface, the type of the ``lost`` callback
and the errors a run reports."""
from __future__ import annotations

from collections.abc import Callable, Generator, Sequence
from typing import Any, Protocol, TypeVar


T = TypeVar("T")


Lost = Callable[[Any, BaseException], T]


class Executor(Protocol):
    """Where the units run (``local``: this process or a process pool; ``ray``: Ray tasks). The
    run only maps a plain function over the units; nothing here knows what a unit does."""

    kind: str  # ``executor.kind``: local or ray

    @property
    def inline(self) -> bool:
        """Whether units run in this process (so their own progress bars may show)."""
        ...

    def __enter__(self) -> Executor:
        """Start (Ray: connect, check the output folder is shared)."""
        ...

    def __exit__(self, *exc: Any) -> None:
        """Stop; units still running are stopped."""
        ...

    def map(self, fn: Callable[..., T], items: Sequence[Any], common: Sequence[Any] = (),
            lost: Lost | None = None) -> Generator[T, None, None]:
        """``fn(item, *common)`` for every item, yielded as each finishes (in any order);
        ``lost(item, exc)`` stands in for a unit whose worker died for good. Closing the
        iterator early stops the units still running."""
        ...


class ExecutorError(RuntimeError):
    """The executor cannot run units here (Ray missing or unreachable, output not shared).
    Raised before any unit ran."""


class NodeLost(RuntimeError):
    """The Ray node this run's driver talks to died mid-run (its raylet is gone): no unit can
    be run or reported here any more. Finished units are kept; a rerun resumes."""
