"""Overlap I/O-ish work (JPEG encode and write, JPEG read and decode) with the main loop.

OpenCV releases the GIL while it encodes, decodes, resizes and runs a network, and so do the
video decoders, so one helper thread is enough to hide image I/O behind decoding or detection.
Both helpers keep at most ``depth`` items in flight: memory stays at a few frames whatever the
length of the video.
"""
from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from types import TracebackType
from typing import Any, TypeVar

T = TypeVar("T")
R = TypeVar("R")

DEPTH = 4
"""Items in flight: enough to smooth out uneven frame times, small enough to not matter."""


class Background:
    """Runs ``submit``ted calls in order on one background thread, at most ``depth`` pending
    (``submit`` waits for the oldest beyond that). The first error is raised by the ``submit``
    or ``close`` that collects it; ``close`` (or leaving the ``with`` block) waits for the rest.
    """

    def __init__(self, depth: int = DEPTH) -> None:
        self._depth = max(1, depth)
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="background")
        self._pending: deque[Future] = deque()

    def submit(self, fn: Callable[..., Any], *args: Any) -> None:
        while len(self._pending) >= self._depth:
            self._pending.popleft().result()
        self._pending.append(self._pool.submit(fn, *args))

    def close(self) -> None:
        try:
            while self._pending:
                self._pending.popleft().result()
        finally:
            for future in self._pending:
                future.cancel()
            self._pool.shutdown(wait=True)

    def __enter__(self) -> Background:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        if kind is None:
            self.close()
            return
        for future in self._pending:  # an error in the caller: do not wait for the queue
            future.cancel()
        self._pending.clear()
        self._pool.shutdown(wait=True)


def prefetch(fn: Callable[[T], R], items: Iterable[T], depth: int = DEPTH) -> Iterator[tuple[T, R]]:
    """``(item, fn(item))`` in order, computing ``fn`` on a background thread up to ``depth``
    items ahead of the consumer. An error of ``fn`` is raised when its item is reached."""
    pending: deque[tuple[T, Future]] = deque()
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="prefetch") as pool:
        try:
            for item in items:
                pending.append((item, pool.submit(fn, item)))
                if len(pending) > depth:
                    first, future = pending.popleft()
                    yield first, future.result()
            while pending:
                first, future = pending.popleft()
                yield first, future.result()
        finally:
            for _, future in pending:
                future.cancel()
