"""Resume bookkeeping: per-(stage, source) markers and fingerprints.

A unit is done when ``state/<stage>/<sid>.json`` exists, its fingerprint matches what the
current config would produce, and the outputs it lists still exist with the size and digest the
marker recorded (``file_digest``): a deleted, truncated or damaged output redoes its unit. State
files that cannot be read (garbled, not JSON, JSON of the wrong shape) count as absent. The
marker is written last,
after the outputs have been renamed into place, so a crash at any moment leaves either a complete
unit or one that is simply redone.

The file helpers (``pipeline.io.files``) and the run lock (``pipeline.state.lock``) have modules of
their own.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from collections.abc import Callable
from typing import Any

from ..core.layout import ROOT_NAMES, SCRATCH_DIRS, OutputLayout
from ..io.files import file_digest, keep_foreign, read_json_object, write_json


def fingerprint(*parts: Any) -> str:
    """A short stable hash of JSON-serialisable parts (config sections, code versions, upstream)."""
    blob = json.dumps(parts, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Marker:
    """What a finished unit recorded: its fingerprint, outputs (relative paths) and result."""

    fingerprint: str
    outputs: list[str]
    result: dict[str, Any]
    seconds: float = 0.0
    digests: dict[str, list] | None = None  # output -> file_digest; None in markers of old versions


class State:
    """The ``state/`` folder of one output directory."""

    def __init__(self, root: Path):
        self.layout = OutputLayout(Path(root))
        self.root = self.layout.root
        self.dir = self.layout.state_dir

    def marker_path(self, stage: str, sid: str) -> Path:
        return self.layout.marker(stage, sid)

    def error_path(self, stage: str, sid: str) -> Path:
        return self.layout.error(stage, sid)

    def read(self, stage: str, sid: str) -> Marker | None:
        raw = read_json_object(self.marker_path(stage, sid))
        if raw is None:
            return None
        try:
            marker = Marker(raw["fingerprint"], raw["outputs"], raw["result"], raw.get("seconds", 0.0),
                            raw.get("digests"))
        except KeyError:
            return None
        shapes = (isinstance(marker.outputs, list) and all(isinstance(o, str) for o in marker.outputs)
                  and isinstance(marker.result, dict)
                  and isinstance(marker.digests, (dict, type(None))))
        return marker if shapes else None

    def is_done(self, stage: str, sid: str, fp: str) -> Marker | None:
        """The marker when the unit is complete for fingerprint ``fp``, else None: every output
        it lists exists and, when the marker recorded its digest (markers of earlier versions
        did not), still has that size and hash."""
        marker = self.read(stage, sid)
        if marker is None or marker.fingerprint != fp:
            return None
        for output in marker.outputs:
            path, recorded = self.root / output, (marker.digests or {}).get(output)
            try:
                if not path.exists() or (recorded is not None and file_digest(path) != recorded):
                    return None
            except OSError:
                return None
        return marker

    def finish(self, stage: str, sid: str, marker: Marker) -> None:
        self.error_path(stage, sid).unlink(missing_ok=True)
        digests = {o: file_digest(self.root / o) for o in marker.outputs if (self.root / o).is_file()}
        write_json(self.marker_path(stage, sid), {**marker.__dict__, "digests": digests})

    def fail(self, stage: str, sid: str, error: dict[str, Any]) -> None:
        write_json(self.error_path(stage, sid), error)

    def error(self, stage: str, sid: str) -> dict[str, Any] | None:
        return read_json_object(self.error_path(stage, sid))

    def discard_partial(self, sid: str) -> None:
        """Remove a unit's scratch folders (``<stage dir>/.<sid>.tmp``) after it failed or was
        interrupted, so nothing half-written stays next to finished outputs."""
        for tmp in self.root.glob(f"*/.{sid}.tmp"):
            shutil.rmtree(tmp, ignore_errors=True)

    def sweep_partial(self, ours: dict[str, Callable[[str, Path], bool]] | None = None) -> None:
        """At the start of a run (under the lock): drop the scratch files and folders a killed run
        left. They are never taken for finished outputs, but they take space. yt-dlp's ``.part``
        files are kept: they let an interrupted download resume.

        Only names this code gives its scratch are touched, and only where it writes them: the
        top level of its own folders (``SCRATCH_DIRS``), and in the output folder itself the
        scratch of its own files and of ``dataset/`` and ``sheets/``. A user's ``.vim.tmp``, a
        ``.draft.tmp/`` folder or a ``.git/.packed.tmp`` is never removed. The old copy of a
        swapped folder goes through ``keep_foreign`` with the test ``ours`` gives for it, so
        files a user put into ``dataset/`` or ``sheets/`` survive a crash at the swap.
        """
        ours = ours or {}
        folders = [self.root / d for d in SCRATCH_DIRS]
        folders += [p for p in self.dir.glob("*") if p.is_dir() and not p.name.startswith(".")]
        for folder in folders:
            for path in _listing(folder):
                if _SCRATCH.match(path.name):
                    _remove(path)
        for path in _listing(self.root):
            m = _ROOT_SCRATCH.match(path.name)
            if m is None or m.group(1) not in ROOT_NAMES:
                continue
            # a link here is the leftover of an older version's swap of a linked dataset/:
            # its target is the folder in use, so only the link goes
            if (m.group(2).startswith(".old.") and m.group(1) in ours and path.is_dir()
                    and not path.is_symlink()):
                keep_foreign(path, self.root / m.group(1), ours[m.group(1)])
            else:
                _remove(path)

    def invalidate(self, stage: str, sid: str) -> None:
        self.marker_path(stage, sid).unlink(missing_ok=True)

    @property
    def final_step_path(self) -> Path:
        return self.layout.final_step

    def start_final_step(self) -> None:
        """Recorded before the last step (dataset/, manifests, sheets, summary) starts, removed
        when it has finished: a run killed, or stopped by a full disk, in between leaves
        ``dataset/`` and the manifest disagreeing, which ``status`` must then report."""
        write_json(self.final_step_path, {"pid": os.getpid(), "started": time.strftime("%Y-%m-%d %H:%M:%S")})

    def finish_final_step(self) -> None:
        self.final_step_path.unlink(missing_ok=True)

    def final_step_unfinished(self) -> bool:
        return self.final_step_path.exists()

    def note_interrupt(self, signal_name: str) -> None:
        """Recorded when a signal (Ctrl-C, SIGTERM, SIGHUP) stops the units, so ``status`` can say
        the run was interrupted rather than show its unfinished units as never started; the
        next run removes it when it starts (``clear_interrupt``)."""
        write_json(self.layout.interrupted, {"signal": signal_name, "pid": os.getpid(),
                                             "at": time.strftime("%Y-%m-%d %H:%M:%S")})

    def clear_interrupt(self) -> None:
        self.layout.interrupted.unlink(missing_ok=True)

    def interruption(self) -> dict[str, Any] | None:
        """What ``note_interrupt`` recorded, if the last run was interrupted (a record of
        another shape counts as absent, as every state file does)."""
        record = read_json_object(self.layout.interrupted)
        ok = record is not None and all(isinstance(record.get(k), str) for k in ("signal", "at"))
        return record if ok else None


_SCRATCH = re.compile(r"^\..+(\.tmp|\.\d+\.tmp|\.old\.\d+)$")
_ROOT_SCRATCH = re.compile(r"^\.(.+?)(\.tmp|\.\d+\.tmp|\.old\.\d+)$")


def _listing(folder: Path) -> list[Path]:
    try:
        return list(folder.iterdir())
    except OSError:
        return []


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)
