"""Being blocked by a host is a state of the run, not a crash.

A site that answers HTTP 429 or a bot check ("Sign in to confirm you're not a bot") refuses this
machine for a while, and asking again at once only makes that longer. So a download that is
blocked (``core.errors.BLOCKED``) moves the host to its next proxy (``download.proxies``) and tries
again; once every proxy (or, without proxies, the one connection) was blocked in a row, it waits
first, pauses growing from ``download.backoff.pause_s`` by ``factor``. When the next pause would
take the host's waiting in this run past ``budget_s``, the host is stopped: its sources are not
tried again in this run but recorded as failed (class ``blocked``, so ``--retry-failed`` retries
exactly those), while the other hosts go on.

Units run in worker processes (or on Ray nodes): what a host did so far is a small record,
``state/hosts/<host>-<hash>.json``, changed under a lock file beside it and cleared when a run
starts and ends, so every worker pauses, rotates and stops together.
"""
from __future__ import annotations

import fcntl
import logging
import shutil
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

from ..config.sources import Download
from ..core.errors import BLOCKED, HostBlocked, classify
from ..io.files import read_json_object, write_json
from ..io.redact import mask_credentials
from .ids import safe_part, short_hash

log = logging.getLogger(__name__)
T = TypeVar("T")

FOLDER = "hosts"
"""Under ``state/``: one record per host that blocked this run."""


@dataclass
class HostRecord:
    """What one host did to this run so far."""

    host: str
    blocks: int = 0  # blocks recorded in this run; a unit compares it to tell one spell from two
    in_a_row: int = 0  # blocks since the host last gave a video
    proxy: int = 0  # index into download.proxies of the one in use
    waited_s: float = 0.0  # pauses taken for this host in this run
    until: float = 0.0  # time.time() at which the current pause ends
    last: str = ""  # the last block's message
    stopped: bool = False  # the budget is used up: no more attempts this run


def host_of(url: str) -> str:
    """The host a URL's requests go to (``www.`` dropped, the port kept when the URL names
    one); the key under which blocks are counted."""
    parts = urlsplit(url)
    host = (parts.hostname or "").removeprefix("www.")
    try:
        port = parts.port
    except ValueError:
        port = None
    return f"{host}:{port}" if port else host or "-"


@contextmanager
def fresh_hosts(state_dir: Path) -> Iterator[None]:
    """A run's blocks, kept for the run only (entered under the run lock): it starts with every
    host open and the whole budget, and leaves nothing that a later ``plan`` could take for a
    host still stopped."""
    shutil.rmtree(state_dir / FOLDER, ignore_errors=True)
    try:
        yield
    finally:
        shutil.rmtree(state_dir / FOLDER, ignore_errors=True)


def gated(expander: Callable[..., T], state_dir: Path, settings: Download) -> Callable[..., T]:
    """A listing (``sources.ytdlp.expand_url``) through its host's gate: a bot check or HTTP 429
    while listing pauses, moves to the next proxy, or stops the host, as a download does. The
    listing's further arguments (its filter) pass through as they are."""
    def listing(url: str, options: dict, *rest: Any) -> T:
        return HostGate(state_dir, url, settings).attempt(
            lambda proxy: expander(url, {**options, **({"proxy": proxy} if proxy else {})}, *rest))
    return listing


def proxy_name(proxy: str | None) -> str:
    """A proxy as it may be printed: its password masked, or "no proxy"."""
    return mask_credentials(proxy) if proxy else "no proxy"


def blocked_hosts(where: Mapping[str, str], failed: Iterable[tuple[str, str | None]]) -> list[str]:
    """The hosts of the ``(source id, class)`` failures that are blocks; ``where``: each source
    id's URL (``Expansion.locations``: videos, and listings that could not be listed)."""
    return sorted({host_of(where[sid]) for sid, kind in failed if kind == BLOCKED and sid in where})


def advice(hosts: list[str]) -> str:
    """The one line a run (and ``status``) ends with when hosts blocked it: what to do."""
    return (f"blocked by {', '.join(hosts)} (bot check or too many requests): give cookies "
            "(download.ytdlp: {cookiefile: cookies.txt} or {cookiesfrombrowser: [firefox]}), a "
            "slower rate (download.ytdlp: {sleep_interval: 10, max_sleep_interval: 20, "
            "sleep_interval_requests: 1}) or proxies (download.proxies), then run again with "
            "--retry-failed")


class HostGate:
    """The attempts of one unit at one host, in step with the other units at that host."""

    def __init__(self, state_dir: Path, url: str, settings: Download):
        self.host = host_of(url)
        self.settings = settings
        # a host name comes from a URL, maybe a listed page's: only its safe part and a hash
        name = f"{safe_part(self.host, 60)}-{short_hash(self.host)}"
        self.path = state_dir / FOLDER / f"{name}.json"
        self.lock_path = state_dir / FOLDER / f"{name}.lock"

    def attempt(self, fetch: Callable[[str | None], T]) -> T:
        """``fetch(proxy)`` until it does not end in a block; raises ``HostBlocked`` once the
        host is stopped (at once when another unit stopped it)."""
        tried = False
        while True:
            seen = self._wait_turn(tried)
            proxy = self._proxy(seen)
            try:
                result = fetch(proxy)
            except Exception as exc:
                kind, message = classify(exc)
                if kind != BLOCKED:
                    raise
                tried = True
                self._blocked(seen, message, proxy)
                continue
            if seen.in_a_row:
                self._given(seen)
            return result

    def _proxy(self, record: HostRecord) -> str | None:
        proxies = self.settings.proxies
        return proxies[record.proxy % len(proxies)] if proxies else None

    def _read(self) -> HostRecord:
        raw = read_json_object(self.path) or {}
        known = {f.name: raw[f.name] for f in fields(HostRecord) if f.name in raw}
        try:
            record = HostRecord(**{**known, "host": self.host})
        except TypeError:
            return HostRecord(self.host)
        numbers = all(isinstance(getattr(record, f), (int, float)) for f in
                      ("blocks", "in_a_row", "proxy", "waited_s", "until"))
        sound = (numbers and isinstance(record.stopped, bool) and isinstance(record.last, str)
                 and record.until <= time.time() + self.settings.backoff.budget_s)
        return record if sound else HostRecord(self.host)  # damaged: start afresh

    @contextmanager
    def _changing(self) -> Iterator[HostRecord]:
        """The record, read and written back under the host's lock file."""
        self.lock_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.lock_path, "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                record = self._read()
                yield record
                write_json(self.path, asdict(record))
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _wait_turn(self, tried: bool) -> HostRecord:
        """The record once the host's pause is over; ``HostBlocked`` when it is stopped."""
        while True:
            record = self._read()
            if record.stopped:
                raise HostBlocked(f"not tried{' again' if tried else ''}: {self.host} blocked "
                                  f"this run ({record.last}); its pauses "
                                  "(download.backoff.budget_s) are used up")
            wait = record.until - time.time()
            if wait <= 0:
                return record
            time.sleep(wait)

    def _blocked(self, seen: HostRecord, message: str, proxy: str | None) -> None:
        """Record a block: the next proxy, then a pause when every proxy was blocked in a row,
        or the host stopped when that pause is over the budget. A block of an attempt made
        before another unit recorded one is the same spell: it only waits with the others."""
        b = self.settings.backoff
        with self._changing() as record:
            if record.blocks != seen.blocks or record.stopped:
                return
            record.blocks += 1
            record.in_a_row += 1
            record.last = message
            tried = max(1, len(self.settings.proxies))
            record.proxy = (record.proxy + 1) % tried
            pause = 0.0
            if record.in_a_row >= tried:
                pause = b.pause_s * b.factor ** (record.in_a_row - tried)
                if record.waited_s + pause > b.budget_s:
                    record.stopped = True
                else:
                    record.waited_s += pause
                    record.until = time.time() + pause
        if record.stopped:
            raise HostBlocked(f"{message}; {self.host} stopped for this run after "
                              f"{record.waited_s:.3g} s of pauses (download.backoff.budget_s)")
        switch = (f"; switching from {proxy_name(proxy)} to "
                  f"{proxy_name(self._proxy(record))}") if self.settings.proxies else ""
        log.warning("%s blocked the run (%s)%s%s", self.host, message, switch,
                    f"; pausing {pause:.3g} s" if pause else "")

    def _given(self, seen: HostRecord) -> None:
        """The host gave a video after blocks: the next block pauses from the start again."""
        with self._changing() as record:
            if record.blocks == seen.blocks:
                record.in_a_row = 0
