"""Helpers for the sheet and review-page tests: a demo run to copy, and a headless Chromium.

One real run of the demo videos is made per test session (``review_demo`` in conftest.py); a test
that changes the output works on a copy (``copy_run``), which a rerun resumes with every stage
skipped because fingerprints never depend on the output folder.
"""
from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.config import Config, parse_config

CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser")
# Flags that keep a headless Chromium off the network and quiet in a container.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage"]


@dataclass(frozen=True)
class DemoRun:
    """A finished run: its raw config (to derive others from) and its output folder."""

    raw: dict
    root: Path

    def config(self, **overrides: Any) -> Config:
        return parse_config({**self.raw, **overrides})


def copy_run(base: DemoRun, dest: Path) -> DemoRun:
    """The same run in another output folder (same videos, so nothing needs recomputing)."""
    shutil.copytree(base.root, dest, symlinks=True)
    (dest / "run.lock").unlink(missing_ok=True)
    return DemoRun({**base.raw, "output": str(dest)}, dest)


def chromium_path() -> str | None:
    """The Debian Chromium (or $PIPELINE_CHROMIUM), if installed."""
    env = os.environ.get("PIPELINE_CHROMIUM")
    if env:
        return env if os.access(env, os.X_OK) else None
    for candidate in CHROMIUM_CANDIDATES:
        if os.access(candidate, os.X_OK):
            return candidate
    return shutil.which("chromium")
