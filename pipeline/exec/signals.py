"""SIGTERM and SIGHUP stop a run the way Ctrl-C does.

docker stop, systemd, Kubernetes and Ray stop a process with SIGTERM; a closed terminal sends
SIGHUP. Python's default for both is to die on the spot: no cleanup, a stale lock, and, with a
process pool, workers left running as orphans that keep writing into an output folder a
restarted run is cleaning. Raised in the main thread as a ``KeyboardInterrupt`` (the exception
Ctrl-C raises), they take Ctrl-C's path: the units are stopped, scratch is removed, the lock is
released and the resume hint is printed; the exit code is the shell's ``128 + signal``.
"""
from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

# SIGHUP does not exist on Windows
STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name))


class Stopped(KeyboardInterrupt):
    """The run was asked to stop by ``signum`` (SIGTERM or SIGHUP)."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


_received: list[int] = []  # the stop signals taken in the current (or last) ``stop_on_signals``


def signal_of(exc: BaseException) -> int:
    """The signal behind an interruption. Ray turns any exception a signal handler raises
    during its calls into a plain ``KeyboardInterrupt``, so the signal taken counts too."""
    if isinstance(exc, Stopped):
        return exc.signum
    return _received[-1] if _received else int(signal.SIGINT)


def exit_code(signum: int) -> int:
    """What a shell reports for a process ended by ``signum``: 130 Ctrl-C, 143 SIGTERM, 129 SIGHUP."""
    return 128 + int(signum)


def _raise_stopped(signum: int, _frame) -> None:
    for other in STOP_SIGNALS:  # a second signal must not interrupt the cleanup of the first
        signal.signal(other, signal.SIG_IGN)
    if hasattr(signal, "alarm"):
        # Ray's C++ core registers SIGTERM with abseil's failure handler, which runs before the
        # handler it chains to (this one) and arms a 3 s SIGALRM that aborts the process: a
        # cleanup slower than that (a loaded machine) died with a stack trace instead of
        # stopping. Nothing here uses SIGALRM, so the timer is cancelled.
        signal.alarm(0)
    _received.append(signum)
    raise Stopped(signum)


@contextmanager
def stop_on_signals() -> Iterator[None]:
    """Within the block, SIGTERM and SIGHUP raise ``Stopped`` in the main thread; the previous
    handlers come back after it. A signal ignored on entry stays ignored (``nohup`` ignores
    SIGHUP so that a run outlives its terminal). Elsewhere than the main thread (where Python
    cannot take signals) it does nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    _received.clear()
    previous = {s: signal.signal(s, _raise_stopped) for s in STOP_SIGNALS
                if signal.getsignal(s) is not signal.SIG_IGN}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


@contextmanager
def keep_handlers() -> Iterator[None]:
    """Within the block, code may replace the stop signals' handlers; they are put back after it
    (Ray's ``ray.init`` installs a SIGTERM handler of its own, which exits without cleanup)."""
    saved = {s: signal.getsignal(s) for s in STOP_SIGNALS}
    try:
        yield
    finally:
        if threading.current_thread() is threading.main_thread():
            for s, handler in saved.items():
                if handler is not None:
                    signal.signal(s, handler)
