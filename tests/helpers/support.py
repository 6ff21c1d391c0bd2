"""Helpers many test modules share: the CLI as a user runs it, a config written and refused as a
user sees it, the manifest as a user reads it, a demo video's first frame, a snippet of Python in
a fresh interpreter, and the ffmpeg binary the media fixtures encode with.

Imported as ``from helpers.support import cli``: conftest.py puts tests/ on ``sys.path``.
"""
from __future__ import annotations

import csv
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import IO

import cv2
import numpy as np
import yaml

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "demo" / "videos"


def cli(*args: str, cwd: Path | None, env: dict[str, str] | None = None,
        timeout: float = 600, stdin: IO[str] | None = None,
        input: str | None = None) -> subprocess.CompletedProcess:
    """``python -m pipeline ARGS`` in ``cwd``, as a user runs it; output captured as text.

    The repository goes on PYTHONPATH so the subprocess imports this checkout from any working
    folder; ``env`` adds to (or overrides) the inherited environment. ``stdin`` is a file the
    command reads as ``< file``, ``input`` text piped to it.
    """
    return subprocess.run([sys.executable, "-m", "pipeline", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=timeout, stdin=stdin, input=input,
                          env={**os.environ, "PYTHONPATH": str(REPO), **(env or {})})


def write_config(folder: Path, **sections) -> Path:
    """``folder/c.yaml``: name t, output out, one sample a second, and ``sections``."""
    path = folder / "c.yaml"
    path.write_text(yaml.safe_dump({"name": "t", "output": "out", "sample": {"every": 1.0},
                                    **sections}, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def one_error(done: subprocess.CompletedProcess) -> str:
    """The problem line of a refused config (exit 2)."""
    assert done.returncode == 2, (done.stdout, done.stderr)
    return done.stderr.strip().splitlines()[-1].strip()


def in_subprocess(code: str) -> str:
    """What ``code`` (dedented) prints in a fresh interpreter that imports this checkout, with no
    ``OMP_*`` variables inherited (the thread budget sets them); it must exit 0."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OMP_")}
    env["PYTHONPATH"] = str(REPO)
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def first_frame(name: str) -> np.ndarray:
    """The first frame of the demo video ``name``."""
    cap = cv2.VideoCapture(str(DEMO / name))
    ok, frame = cap.read()
    cap.release()
    assert ok
    return frame


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
