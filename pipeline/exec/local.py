"""The local executor: inline for one worker, else a spawn process pool of ``workers`` whose
processes die with the run's process."""
from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from functools import partial
from multiprocessing import get_context
from typing import Any

from .base import Lost, T



def _call(fn: Callable[..., T], common: tuple, item: Any) -> T:
    return fn(item, *common)


PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>
PARENT_POLL_S = 0.5


def _die_with_parent(parent: int) -> None:
    """Pool worker initializer: end this worker when the run's process ends, even by SIGKILL.

    An orphaned worker would go on writing into the output folder while a restarted run cleans
    it, and record healthy sources as failed. Linux: the kernel kills the worker when its
    parent dies (prctl PR_SET_PDEATHSIG; the parent may have died before the call, hence the
    pid check). Elsewhere (macOS) a daemon thread notices the parent pid change within
    ``PARENT_POLL_S``.
    """
    if sys.platform.startswith("linux"):
        try:
            if ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL)) == 0:
                if os.getppid() != parent:
                    os._exit(1)
                return
        except (OSError, AttributeError):  # no prctl in this libc: poll instead
            pass
    threading.Thread(target=_watch_parent, args=(parent,), name="watch-parent", daemon=True).start()


def _watch_parent(parent: int) -> None:
    """End this process once its parent ``parent`` is gone (it is then re-parented)."""
    while os.getppid() == parent:
        time.sleep(PARENT_POLL_S)
    os._exit(1)


class LocalExecutor:
    """Inline for one worker (or one item), else a spawn ``multiprocessing`` pool.

    multiprocessing's Pool (not concurrent.futures) because it can terminate its workers: Ctrl-C
    must stop the run within seconds, not after every running unit has finished.
    """

    kind = "local"

    def __init__(self, workers: int):
        self.workers = workers

    @property
    def inline(self) -> bool:
        """Whether units run in this process (so their own progress bars may show)."""
        return self.workers == 1

    def __enter__(self) -> LocalExecutor:
        return self

    def __exit__(self, *exc: Any) -> None:
        return None

    def map(self, fn: Callable[..., T], items: Sequence[Any], common: Sequence[Any] = (),
            lost: Lost | None = None) -> Iterator[T]:
        items, common = list(items), tuple(common)
        if self.workers == 1 or len(items) <= 1:
            for item in items:
                yield fn(item, *common)
            return
        pool = get_context("spawn").Pool(processes=min(self.workers, len(items)),
                                         initializer=_die_with_parent, initargs=(os.getpid(),))
        try:
            yield from pool.imap_unordered(partial(_call, fn, common), items)
            pool.close()
        except BaseException:  # Ctrl-C, an error, or the caller closing us early
            pool.terminate()
            raise
        finally:
            pool.join()
