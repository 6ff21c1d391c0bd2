"""The run lock: one run at a time per output folder."""
from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path
from typing import Any

from ..core.layout import OutputLayout
from ..io.files import pid_alive, read_json_object


class LockError(RuntimeError):
    pass


class RunLock:
    """``run.lock``: one writer at a time per output folder (``run``, ``sheet``, ``export``,
    ``review`` while it builds the page); a dead owner's lock is taken over.

    The lock file is created with O_EXCL so two starting runs cannot both win. A lock whose
    process is gone (same host) is stale: it is replaced, again with O_EXCL after removal, so
    two runs taking over the same stale lock still cannot both succeed.
    """

    def __init__(self, root: Path, command: str = "run"):
        self.path = OutputLayout(root).lock
        self.command = command  # named to whoever finds the folder taken
        self.held = False

    def _owner(self) -> dict[str, Any]:
        return read_json_object(self.path) or {}

    def _create(self) -> bool:
        try:
            fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return False
        with os.fdopen(fd, "w") as f:
            json.dump({"pid": os.getpid(), "host": socket.gethostname(), "command": self.command,
                       "started": time.strftime("%Y-%m-%d %H:%M:%S")}, f)
        return True

    @staticmethod
    def _stale(owner: dict[str, Any]) -> bool:
        """A lock of a process of this host that is gone."""
        pid = owner.get("pid")
        return owner.get("host") == socket.gethostname() and isinstance(pid, int) and not pid_alive(pid)

    def holder(self) -> dict[str, Any] | None:
        """The owner of the lock when a live process on this host (or any on another) holds it."""
        owner = self._owner()
        return owner if owner and not self._stale(owner) else None

    def left_by_dead(self) -> dict[str, Any] | None:
        """The owner of a lock its process left behind: it was killed (SIGKILL, out of memory,
        a power cut) before it could release it."""
        owner = self._owner()
        return owner if owner and self._stale(owner) else None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        for _ in range(3):
            if self._create():
                self.held = True
                return
            owner = self._owner()
            pid = owner.get("pid")
            if owner and self._stale(owner):
                self.path.unlink(missing_ok=True)  # stale: its process is gone
                continue
            if not owner:  # being written right now, or garbage: give it a moment
                time.sleep(0.2)
                if not self._owner():
                    self.path.unlink(missing_ok=True)
                continue
            raise LockError(
                f"{self.path.parent} is in use by another command ({owner.get('command', 'run')}, "
                f"pid {pid} on {owner.get('host')}, started {owner.get('started')}); wait for it "
                f"to finish, or delete {self.path} if you are sure it is gone")
        raise LockError(f"could not take {self.path}")

    def release(self) -> None:
        if self.held:
            self.path.unlink(missing_ok=True)
            self.held = False

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.release()
