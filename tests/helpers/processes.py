"""The processes a run leaves behind, read from /proc (Linux): children of a pid, and which of
some pids are still alive after a while; and a run in a subprocess watched for what it does:
a stage finished for a source, a line said.

On a loaded machine (CI's two cores, several test workers) every step of a run takes several
times longer, so these wait for what can be seen to happen, never for a fixed time; their
deadlines only bound a hang.
"""
from __future__ import annotations

import signal
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO

import pytest


def children(pid: int) -> list[int]:
    """The live child processes of ``pid``."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def alive(pid: int) -> bool:
    """Running (a zombie waiting for a parent that does not reap it counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


def survivors(pids: list[int], within: float) -> list[int]:
    """The ``pids`` still alive after waiting up to ``within`` seconds for them to end."""
    deadline = time.monotonic() + within
    while any(alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    return [p for p in pids if alive(p)]


def finished(markers: Path) -> list[Path]:
    """The markers in a stage's state folder of the sources that finished the stage
    (``<sid>.json``), not of those that failed it (``<sid>.error.json``): a failure is no sign
    that the run is at work."""
    if not markers.is_dir():
        return []
    return [p for p in markers.glob("*.json") if not p.name.endswith(".error.json")]


def wait_while_running(ready: Callable[[], bool], proc: subprocess.Popen, what: str,
                       timeout: float = 600) -> float:
    """Wait until ``ready()`` while ``proc`` runs; the seconds it took. The test fails, with the
    run's output when there is some, if the run ends first or ``timeout`` passes (a hang)."""
    started = time.monotonic()
    while not ready():
        ended = proc.poll() is not None
        if ended or time.monotonic() - started > timeout:
            if not ended:
                proc.kill()
            out, err = proc.communicate()
            pytest.fail(f"{what}: the run {'ended' if ended else 'hung'} first "
                        f"(exit {proc.returncode}): {(err or '')[-2000:]}")
        time.sleep(0.01)
    return time.monotonic() - started


def read_until(stream: IO[str], text: str, within: float) -> tuple[float | None, str]:
    """The lines of ``stream`` up to the first holding ``text``: (when it came, or None if it did
    not within ``within`` seconds; what was read). A thread reads, so a blocked read does not
    block the wait."""
    lines: list[str] = []
    came: list[float] = []

    def read() -> None:
        for line in stream:
            lines.append(line)
            if text in line:
                came.append(time.monotonic())
                return

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(within)
    return (came[0] if came else None), "".join(lines)


def stop_and_wait(proc: subprocess.Popen, signum: int, quickly: float, to_work: float) -> str:
    """Send ``signum`` to a run at work and wait for it to say it was interrupted and end; its
    stderr. "Quickly" is within ``quickly`` seconds or, on a machine so loaded that the run took
    longer to start and reach its work (``to_work``), within that time: the stop's own work
    slows down as much."""
    sent = time.monotonic()
    proc.send_signal(signum)
    stopped, before = read_until(proc.stderr, "interrupted", within=300)
    if stopped is None:
        proc.kill()
    assert stopped is not None, ("the run did not say it was interrupted", before)
    assert stopped - sent < max(quickly, to_work), "the run must stop within seconds"
    _, rest = proc.communicate(timeout=300)
    return before + rest


def pause_when_finished(proc: subprocess.Popen, markers: Path) -> None:
    """Wait while the run works until a source finished the stage whose state folder is
    ``markers``, then pause the run (SIGSTOP; the caller sends SIGCONT): what the test does next
    meets the run at that point, whatever the machine's speed."""
    wait_while_running(lambda: bool(finished(markers)), proc, f"a source through {markers.name}")
    proc.send_signal(signal.SIGSTOP)
