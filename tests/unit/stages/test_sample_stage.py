"""The sample stage with each sampling strategy: the same files, rows and pixels; and the
stage fingerprint, which the decoding strategy does not enter."""
from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.config.load import parse_config
from pipeline.core.records import Video
from helpers import media
from pipeline.stages import sample
from pipeline.io.files import read_jsonl
from pipeline.video.packets import pyav_available
from helpers.support import ffmpeg_exe


def _config(tmp_path: Path, video: Path, **sample_section) -> object:
    return parse_config({"name": "t", "output": str(tmp_path / "out"),
                         "sources": [{"path": str(video)}],
                         "sample": {"every": 0.7, **sample_section}})


def _clip(video: Path) -> Video:
    return Video(sid="clip", kind="file", location=str(video), spec_index=0)


@pytest.mark.skipif(not pyav_available() or ffmpeg_exe() is None,
                    reason="needs PyAV and imageio-ffmpeg")
def test_strategies_write_the_same_frames(tmp_path: Path) -> None:
    video = media.make_gop_video(tmp_path / "gop.mp4", frames=200, gop=25, size=(320, 240))
    written = {}
    for strategy in ("sequential", "seek"):
        root = tmp_path / strategy
        outputs, result = sample.run(_clip(video), _config(root, video, strategy=strategy), root,
                                     [{"path": str(video)}])
        assert result["strategy"] == strategy and result["frames"] == 12
        folder = root / "frames" / "clip"
        rows = read_jsonl(folder / "frames.jsonl")
        written[strategy] = (rows, {p.name: p.read_bytes() for p in folder.glob("*.jpg")})
    assert written["seek"] == written["sequential"]  # same rows, same JPEG bytes


def test_fingerprint_ignores_the_strategy_and_exact_by_default(tmp_path: Path) -> None:
    video = tmp_path / "v.mp4"
    clip = _clip(video)

    def fp(**section) -> str:
        return sample.stage_fingerprint(clip, _config(tmp_path, video, **section), "up")

    assert fp() == fp(strategy="sequential") == fp(strategy="seek") == fp(exact=True)
    assert fp(exact=False) != fp()
