"""Helpers many test modules share: the CLI as a user runs it, the manifest as a user reads it,
and the ffmpeg binary the media fixtures encode with.

Imported as ``from helpers.support import cli``: conftest.py puts tests/ on ``sys.path``.
"""
from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "demo" / "videos"


def cli(*args: str, cwd: Path | None, env: dict[str, str] | None = None,
        timeout: float = 600) -> subprocess.CompletedProcess:
    """``python -m pipeline ARGS`` in ``cwd``, as a user runs it; output captured as text.

    The repository goes on PYTHONPATH so the subprocess imports this checkout from any working
    folder; ``env`` adds to (or overrides) the inherited environment.
    """
    return subprocess.run([sys.executable, "-m", "pipeline", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=timeout,
                          env={**os.environ, "PYTHONPATH": str(REPO), **(env or {})})


def read_manifest(root: Path) -> list[dict[str, str]]:
    """The rows of ``root/manifest.csv`` (every value a string, as a CSV reader sees them)."""
    with open(root / "manifest.csv", newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def ffmpeg_exe() -> str | None:
    """The ffmpeg binary shipped with imageio-ffmpeg, or None when it is not installed (tests that
    need it skip then). Not one on PATH: the tests use what the test extra installs."""
    try:
        import imageio_ffmpeg
    except ImportError:
        return None
    return imageio_ffmpeg.get_ffmpeg_exe()
