"""Tests of pipeline.video on generated videos (each frame encodes its own index) and, when the
shared folder is present, on real footage."""
from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest

from helpers import media
import pipeline.video.pyav as pyav_source
from pipeline.video.packets import PacketIndex, index_packets, pyav_available
from pipeline.video.plan import Range, SamplePlan
from pipeline.video.sampler import Sampler, iter_samples
from pipeline.video.probe import VideoError, VideoInfo
from pipeline.video import probe
from pipeline.video.selection import sharpness
from pipeline.video.packets import IndexMismatch, runs_to_decode
from pipeline.video.probe import container_info
from pipeline.video.selection import Clock
from helpers.support import ffmpeg_exe

ROOT = Path(__file__).resolve().parents[3]
ALL_FRAMES = SamplePlan(mode="every", every_s=0.001)
"""A step shorter than any frame: every frame is kept once."""
CFR_MS = [40 * i for i in range(50)]

needs_ffmpeg = pytest.mark.skipif(ffmpeg_exe() is None,
                                  reason="imageio-ffmpeg (ffmpeg binary) is not installed")
needs_pyav = pytest.mark.skipif(not pyav_available(),
                                reason="PyAV (the 'fast' extra) is not installed")


@pytest.fixture(scope="module")
def videos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("videos")


@pytest.fixture(scope="module")
def cfr(videos: Path) -> Path:
    """50 frames at 25 fps, mp4v via cv2.VideoWriter."""
    return media.make_video(videos / "cfr.mp4", frames=50, fps=25.0)


@pytest.fixture(scope="module")
def bframes(videos: Path) -> Path:
    if ffmpeg_exe() is None:
        pytest.skip("imageio-ffmpeg is not installed")
    return media.make_h264_video(videos / "bframes.mp4", frames=50, bframes=3)


@pytest.fixture(scope="module")
def vfr(videos: Path) -> Path:
    """30 frames: 10 at 40 ms, then 20 at 100 ms."""
    if ffmpeg_exe() is None:
        pytest.skip("imageio-ffmpeg is not installed")
    return media.make_vfr_video(videos / "vfr.mp4", frames=30)


@pytest.fixture(scope="module")
def raw264(videos: Path) -> Path:
    if ffmpeg_exe() is None:
        pytest.skip("imageio-ffmpeg is not installed")
    return media.make_h264_video(videos / "raw.264", frames=50)


def sample(path: Path, plan: SamplePlan, info: VideoInfo | None = None) -> list[tuple[int, int]]:
    """(t_ms, frame_index) of every sample, checking that each image shows its frame index."""
    out = []
    for frame in iter_samples(path, plan, info):
        assert media.decode_index(frame.image) == frame.frame_index, frame.t_ms
        out.append((frame.t_ms, frame.frame_index))
    return out


# --- probe -----------------------------------------------------------------------------------

def test_probe_cfr(cfr: Path) -> None:
    assert probe(cfr) == VideoInfo(width=320, height=240, fps=25.0, frame_count=50,
                                   duration_s=2.0)


def test_probe_raw_stream_has_no_frame_count(raw264: Path) -> None:
    # OpenCV reports a huge negative CAP_PROP_FRAME_COUNT for raw H.264.
    assert cv2.VideoCapture(str(raw264)).get(cv2.CAP_PROP_FRAME_COUNT) <= 0
    info = probe(raw264)
    assert (info.width, info.height, info.frame_count, info.duration_s) == (320, 240, None, None)


@pytest.mark.testdata
@needs_pyav
def test_container_header_tells_what_probe_decodes(codec_clips: dict[str, Path], raw264: Path,
                                                   cfr: Path, testdata: Path) -> None:
    """``plan`` reads lengths from the header: the same numbers as the probe that decodes, on
    every real clip and codec clip it accepts; none for what the header cannot vouch for (raw
    streams, Matroska and WebM, which store no frame count)."""
    clips = [*codec_clips.values(), raw264, cfr,
             *(p for p in testdata.rglob("*") if p.suffix in {".mp4", ".avi", ".264"})]
    read = {path.name: container_info(path) for path in clips}
    assert [name for name, info in read.items() if info is None] == [
        "codec_open.mkv", "codec_vp9.webm", "codec_av1.mkv", "raw.264", "error_i_p.264"]
    for path in clips:
        assert read[path.name] in (None, probe(path)), path


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("make, reason", [
    (lambda d: d / "missing.mp4", "no such file"),
    (lambda d: _write(d / "empty.mp4", b""), "empty file"),
    (lambda d: _write(d / "text.mp4", b"not a video\n" * 100), "cannot open"),
    (lambda d: d, "not a file"),
])
def test_broken_inputs_raise_video_error(tmp_path: Path, make, reason: str) -> None:
    path = make(tmp_path)
    with pytest.raises(VideoError, match=reason) as probe_error:
        probe(path)
    assert str(path) in str(probe_error.value)
    with pytest.raises(VideoError, match=reason):
        iter_samples(path, SamplePlan())


# --- timestamps and frame identity -------------------------------------------------------------

@pytest.mark.parametrize("name", ["cfr", "mjpg", "bframes", "vfr"])
def test_every_frame_has_its_decoder_timestamp(name: str, request: pytest.FixtureRequest,
                                               videos: Path) -> None:
    """POS_MSEC read right after grab() is the grabbed frame's own time, and retrieve() gives
    that frame (B-frames reorder decoding, VFR breaks index * 1000 / fps)."""
    if name == "mjpg":
        path, expected = media.make_video(videos / "mjpg.avi", 50, fourcc="MJPG"), CFR_MS
    else:
        path = request.getfixturevalue(name)
        expected = media.vfr_times_ms(30) if name == "vfr" else CFR_MS
    samples = iter_samples(path, ALL_FRAMES)
    frames = [(f.t_ms, f.frame_index, media.decode_index(f.image)) for f in samples]
    assert frames == [(t, i, i) for i, t in enumerate(expected)]
    assert samples.estimated_timestamps == 0


def test_raw_stream_timestamps_are_estimated(raw264: Path) -> None:
    samples = iter_samples(raw264, ALL_FRAMES)
    frames = [(f.t_ms, f.frame_index, media.decode_index(f.image)) for f in samples]
    assert frames == [(t, i, i) for i, t in enumerate(CFR_MS)]
    assert samples.estimated_timestamps == 49  # all but the first frame read 0


def test_clock_repairs_missing_and_backward_timestamps() -> None:
    clock = Clock(frame_ms=40.0)
    readings = [0.0, 0.0, 0.0, 200.0, 150.0, float("nan"), 400.0, 400.0]
    assert [clock.stamp(r) for r in readings] == [0, 40, 80, 200, 240, 280, 400, 440]
    assert clock.estimated == 5


# --- modes -----------------------------------------------------------------------------------

def test_every_mode_takes_first_frame_at_or_after_each_target(cfr: Path) -> None:
    samples = iter_samples(cfr, SamplePlan(every_s=0.5, strategy="sequential"))
    assert [(f.t_ms, f.frame_index) for f in samples] == [(0, 0), (520, 13), (1000, 25),
                                                          (1520, 38)]
    assert all(f.range_index == -1 for f in iter_samples(cfr, SamplePlan(every_s=0.5)))
    assert samples.retrieved == 4 and samples.grabbed == 50  # retrieve only what is kept


def test_fps_mode_on_cfr_and_vfr(cfr: Path, vfr: Path) -> None:
    plan = SamplePlan(mode="fps", fps=4)
    assert [t for t, _ in sample(cfr, plan)] == [0, 280, 520, 760, 1000, 1280, 1520, 1760]
    # In the 100 ms part, targets every 250 ms land on the next 100 ms frame.
    assert sample(vfr, plan) == [(0, 0), (280, 7), (500, 11), (800, 14), (1000, 16),
                                 (1300, 19), (1500, 21), (1800, 24), (2000, 26), (2300, 29)]


def test_vfr_gap_gives_one_frame_for_several_targets(vfr: Path) -> None:
    plan = SamplePlan(every_s=0.06)  # shorter than the 100 ms frame spacing after frame 10
    # Targets 420 and 480 ms both fall on the 500 ms frame (11): it is taken once. From there
    # on every 100 ms frame covers one or two targets, so each is taken exactly once.
    assert [i for _, i in sample(vfr, plan)] == [0, 2, 3, 5, 6, 8, 9, *range(11, 30)]


def test_count_mode(cfr: Path) -> None:
    assert [i for _, i in sample(cfr, SamplePlan(mode="count", count=5))] == [0, 10, 20, 30, 40]
    assert [i for _, i in sample(cfr, SamplePlan(mode="count", count=50))] == list(range(50))
    assert len(sample(cfr, SamplePlan(mode="count", count=80))) == 50  # never a frame twice


def test_count_mode_learns_unknown_duration_with_a_first_pass(raw264: Path) -> None:
    samples = iter_samples(raw264, SamplePlan(mode="count", count=5))
    assert [f.frame_index for f in samples] == [0, 10, 20, 30, 40]
    assert samples.grabbed == 100  # counting pass + sampling pass


def test_count_mode_shares_count_between_ranges(cfr: Path) -> None:
    plan = SamplePlan(mode="count", count=4, ranges=(Range(0.0, 0.4), Range(1.0, None)))
    frames = list(iter_samples(cfr, plan))
    # 0.4 s and 1.0 s of video: 1 and 3 samples (largest remainder of 1.14 and 2.86).
    assert [(f.range_index, f.t_ms) for f in frames] == [(0, 0), (1, 1000), (1, 1360),
                                                         (1, 1680)]


def test_ranges_labels_and_early_stop(cfr: Path) -> None:
    plan = SamplePlan(every_s=0.5, ranges=(Range(0.3, 1.0, "a"), Range(0.8, 1.6, "b")))
    samples = iter_samples(cfr, plan)
    frames = [(f.t_ms, f.range_index, media.decode_index(f.image)) for f in samples]
    # [0.8, 1.0) belongs to the first range; the second's 0.8 s target lands on 1.0 s.
    assert frames == [(320, 0, 8), (800, 0, 20), (1000, 1, 25), (1320, 1, 33)]
    assert samples.strategy == "seek"  # 4 frames of 50: auto decodes only what it needs
    sequential = iter_samples(cfr, replace(plan, strategy="sequential"))
    assert [(f.t_ms, f.range_index, media.decode_index(f.image)) for f in sequential] == frames
    assert sequential.grabbed == 41  # stopped at the first frame past 1.6 s


def test_range_past_the_end_gives_nothing(cfr: Path) -> None:
    assert sample(cfr, SamplePlan(ranges=(Range(5.0, 6.0),))) == []
    assert sample(cfr, SamplePlan(mode="count", count=3, ranges=(Range(5.0, None),))) == []


def test_scene_mode_one_sample_per_shot(videos: Path) -> None:
    path = media.make_video(videos / "shots.mp4", 100, pattern=media.shots([25, 50, 75]))
    samples = iter_samples(path, SamplePlan(mode="scene"))
    assert [f.frame_index for f in samples] == [0, 25, 50, 75]
    assert samples.retrieved == 100
    in_range = SamplePlan(mode="scene", ranges=(Range(0.4, 2.5),))
    assert [f.frame_index for f in iter_samples(path, in_range)] == [10, 25, 50]
    # The cut at 1.0 s comes 0.48 s after the range's first sample (at 0.52 s): within the
    # minimum gap, so it is not sampled.
    late_start = SamplePlan(mode="scene", ranges=(Range(0.5, 2.5),))
    assert [f.frame_index for f in iter_samples(path, late_start)] == [13, 50]


def test_scene_mode_min_gap_ignores_a_second_cut_too_soon(videos: Path) -> None:
    path = media.make_video(videos / "flash.mp4", 100, pattern=media.shots([25, 30, 75]))
    assert [f.frame_index for f in iter_samples(path, SamplePlan(mode="scene"))] == [0, 25, 75]
    no_gap = SamplePlan(mode="scene", scene_min_gap_s=0)
    assert [f.frame_index for f in iter_samples(path, no_gap)] == [0, 25, 30, 75]


# --- sharpness -------------------------------------------------------------------------------

def test_sharpness_function() -> None:
    sharp = media.blurred_every(1000)(1, (320, 240))
    assert sharpness(np.full((50, 50, 3), 128, np.uint8)) == 0.0
    assert sharpness(sharp) > 100 * sharpness(cv2.GaussianBlur(sharp, (0, 0), 12))


def test_min_sharpness_drops_blurred_frames_without_replacing_them(videos: Path) -> None:
    path = media.make_video(videos / "blur.mp4", 20, pattern=media.blurred_every(5))
    samples = iter_samples(path, SamplePlan(every_s=0.001, min_sharpness=100))
    assert [f.frame_index for f in samples] == [i for i in range(20) if i % 5]
    assert samples.dropped_blurry == 4
    # Targets every 0.2 s hit exactly the blurred frames: all dropped, none replaced.
    every_blurred = iter_samples(path, SamplePlan(every_s=0.2, min_sharpness=100))
    assert list(every_blurred) == [] and every_blurred.dropped_blurry == 4


# --- seeking ---------------------------------------------------------------------------------

def test_seek_start_keeps_exact_timestamps_and_indexes(videos: Path) -> None:
    path = media.make_video(videos / "long.mp4", 250, size=(160, 120))
    plan = SamplePlan(every_s=0.5, ranges=(Range(7.0, 8.0),), strategy="sequential")
    sequential = iter_samples(path, plan)
    expected = [(f.t_ms, f.frame_index) for f in sequential]
    assert expected == [(7000, 175), (7520, 188)]
    seeking = iter_samples(path, SamplePlan(every_s=0.5, ranges=(Range(7.0, 8.0),),
                                            seek_start=True))
    frames = [(f.t_ms, f.frame_index, media.decode_index(f.image)) for f in seeking]
    assert frames == [(t, i, i) for t, i in expected]
    assert seeking.seeked and seeking.grabbed < sequential.grabbed - 100


def test_seek_that_overshoots_falls_back_to_sequential(videos: Path) -> None:
    if ffmpeg_exe() is None:
        pytest.skip("imageio-ffmpeg is not installed")
    # Slow first (200 ms frames) then fast (20 ms): a seek by nominal frame number overshoots.
    path = media.make_vfr_video(videos / "overshoot.mp4", frames=200, fast_ms=200,
                                slow_ms=20, switch=30, size=(160, 120))
    times = media.vfr_times_ms(200, fast_ms=200, slow_ms=20, switch=30)
    samples = iter_samples(path, SamplePlan(every_s=0.5, ranges=(Range(6.0, 7.0),),
                                            seek_start=True))
    assert [(f.t_ms, f.frame_index) for f in samples] == [(6000, 30), (6500, times.index(6500))]
    sequential = iter_samples(path, SamplePlan(every_s=0.5, ranges=(Range(6.0, 7.0),),
                                               strategy="sequential"))
    list(sequential)
    assert not samples.seeked
    assert samples.grabbed == sequential.grabbed + 1  # the seek was tried, then abandoned


# --- strategies: keyframe-aware decoding gives what a sequential decode gives ------------------

def _frames(path: Path, plan: SamplePlan, strategy: str) -> tuple[Sampler, list]:
    samples = iter_samples(path, replace(plan, strategy=strategy))
    return samples, [(f.t_ms, f.frame_index, f.range_index, f.image) for f in samples]


def assert_same_as_sequential(path: Path, plan: SamplePlan) -> tuple[Sampler, Sampler]:
    """The ``seek`` strategy yields the frames of a plain sequential decode: same times, indexes,
    ranges, and the same pixels (each image also shows its own frame index)."""
    sequential, expected = _frames(path, plan, "sequential")
    seek, got = _frames(path, plan, "seek")
    assert (sequential.strategy, seek.strategy) == ("sequential", "seek")
    assert [f[:3] for f in got] == [f[:3] for f in expected]
    for (_, index, _, image), (*_, reference) in zip(got, expected):
        assert media.decode_index(image) == index
        assert np.array_equal(image, reference)
    assert seek.unreadable == 0
    return sequential, seek


@pytest.fixture(scope="module")
def gop_videos(videos: Path) -> dict[str, Path]:
    """Videos with a known GOP: closed-GOP H.264 with B-pyramid, open-GOP HEVC (leading
    pictures that refer to the previous GOP), H.264 in Matroska, plus the module's mp4v and VFR."""
    if ffmpeg_exe() is None:
        pytest.skip("imageio-ffmpeg is not installed")
    return {
        "h264_gop25": media.make_gop_video(videos / "gop25.mp4", frames=250, gop=25),
        "h264_gop60_mkv": media.make_gop_video(videos / "gop60.mkv", frames=250, gop=60),
        "hevc_open_gop": media.make_gop_video(videos / "hevc.mp4", frames=150, gop=25,
                                              codec="libx265", open_gop=True, bframes=4),
    }


PLANS = {
    "all": ALL_FRAMES,
    "every_0.3": SamplePlan(every_s=0.3),
    "every_1": SamplePlan(every_s=1.0),
    "every_2.2": SamplePlan(every_s=2.2),
    "fps_3": SamplePlan(mode="fps", fps=3),
    "count_7": SamplePlan(mode="count", count=7),
    "ranges": SamplePlan(every_s=0.7, ranges=(Range(0.5, 2.9, "a"), Range(2.5, 4.1, "b"),
                                              Range(6.3, None))),
    "sharp": SamplePlan(every_s=0.5, min_sharpness=1.0),
}


@needs_pyav
@pytest.mark.parametrize("seek_gap", [0, pyav_source.SEEK_GAP_PACKETS])
@pytest.mark.parametrize("plan", PLANS.values(), ids=PLANS.keys())
@pytest.mark.parametrize("name", ["h264_gop25", "h264_gop60_mkv", "hevc_open_gop", "cfr",
                                  "vfr", "bframes"])
def test_seek_strategy_matches_sequential_decode(name: str, plan: SamplePlan, seek_gap: int,
                                                 gop_videos: dict[str, Path],
                                                 request: pytest.FixtureRequest,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """Every plan, on every kind of GOP, with a real seek across every gap (seek_gap 0) or
    demuxing through them: the frames of a plain sequential decode."""
    monkeypatch.setattr(pyav_source, "SEEK_GAP_PACKETS", seek_gap)
    path = gop_videos.get(name) or request.getfixturevalue(name)
    assert_same_as_sequential(path, plan)


@needs_pyav
def test_seek_strategy_decodes_only_what_it_needs(gop_videos: dict[str, Path]) -> None:
    path = gop_videos["h264_gop25"]  # 250 frames, a keyframe every 25 (1 s)
    assert index_packets(path).keyframe_interval_s == 1.0
    # Every 2 s: only keyframes are picked, and only they are decoded.
    _, seek = assert_same_as_sequential(path, SamplePlan(every_s=2.0))
    assert seek.grabbed == seek.retrieved == 5
    # Every 0.5 s: the second half of each GOP is skipped (packets of frames 0..12 of 25).
    sequential, seek = assert_same_as_sequential(path, SamplePlan(every_s=0.5))
    assert sequential.grabbed == 250 and seek.grabbed < 0.6 * 250


@needs_pyav
def test_leading_pictures_of_an_open_gop(gop_videos: dict[str, Path],
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """HEVC open GOP: the 4 frames shown just before each keyframe (CRA) are decoded after it
    and refer to the previous GOP; picking them needs the previous GOP decoded too."""
    monkeypatch.setattr(pyav_source, "SEEK_GAP_PACKETS", 0)
    path = gop_videos["hevc_open_gop"]
    index = index_packets(path)
    key = int(np.flatnonzero(index.key)[1])
    assert index.pts[key + 1] < index.pts[key]  # a leading picture follows the keyframe
    plan = SamplePlan(every_s=1.0, ranges=(Range(0.88, None),))  # frames 22, 47, ...: leading
    _, seek = assert_same_as_sequential(path, plan)
    assert [f.frame_index for f in iter_samples(path, plan)] == [22, 47, 72, 97, 122, 147]


# --- skipping non-reference frames: exact on every codec and stream kind ----------------------

H264 = ["-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p"]
CODEC_CLIPS = {  # name: (file name, ffmpeg output arguments)
    "h264_no_bframes": ("nob.mp4", [*H264, "-bf", "0", "-g", "25"]),
    "h264_bpyramid": ("bpyramid.mp4", [*H264, "-bf", "3", "-x264-params",
                                       "keyint=50:min-keyint=50:scenecut=0:b-pyramid=normal"]),
    "h264_open_gop": ("open.mkv", [*H264, "-bf", "3", "-x264-params",
                                   "keyint=25:min-keyint=25:scenecut=0:open-gop=1"]),
    "hevc_open_gop": ("hevc.mp4", ["-c:v", "libx265", "-preset", "veryfast", "-pix_fmt", "yuv420p",
                                   "-x265-params", "keyint=25:min-keyint=25:scenecut=0:bframes=4"
                                   ":open-gop=1:log-level=error"]),
    "vp9_altref": ("vp9.webm", ["-c:v", "libvpx-vp9", "-deadline", "good", "-cpu-used", "8",
                                "-g", "50", "-auto-alt-ref", "1", "-lag-in-frames", "16",
                                "-b:v", "200k", "-pix_fmt", "yuv420p"]),
    "av1": ("av1.mkv", ["-c:v", "libsvtav1", "-preset", "12", "-g", "25", "-pix_fmt", "yuv420p"]),
    "mpeg4_bframes": ("mpeg4.mp4", ["-c:v", "mpeg4", "-bf", "2", "-g", "25", "-q:v", "4",
                                    "-pix_fmt", "yuv420p"]),
    "mjpeg": ("mjpeg.avi", ["-c:v", "mjpeg", "-q:v", "4", "-pix_fmt", "yuvj420p"]),
}
SKIPPING = {"h264_bpyramid": "h264", "h264_open_gop": "h264", "hevc_open_gop": "hevc",
            "mpeg4_bframes": "mpeg4"}
"""The clips with non-reference frames whose decoder skips them (``pyav.NONREF_CODECS``)."""


@pytest.fixture(scope="module")
def codec_clips(videos: Path) -> dict[str, Path]:
    """120 frames of 160x120 in each codec and stream kind (``CODEC_CLIPS``), ~0.1 s each."""
    if ffmpeg_exe() is None:
        pytest.skip("imageio-ffmpeg is not installed")
    return {name: media.make_encoded_video(videos / f"codec_{file}", args, frames=120)
            for name, (file, args) in CODEC_CLIPS.items()}


@needs_pyav
@pytest.mark.parametrize("parallel", [True, False])
@pytest.mark.parametrize("threads", [1, 0])
@pytest.mark.parametrize("name", [*CODEC_CLIPS, "vfr", "bframes", "cfr"])
def test_skipping_nonreference_frames_gives_the_frames_of_a_full_decode(
        name: str, threads: int, parallel: bool, codec_clips: dict[str, Path],
        request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Dense and sparse plans on every codec, one decoder thread or FFmpeg's frame threads, runs
    on parallel decoders or one: the frames (times, indexes, pixels) of a sequential decode."""
    monkeypatch.setattr(pyav_source, "PARALLEL_RUNS", parallel)
    path = codec_clips.get(name) or request.getfixturevalue(name)
    for step in (0.3, 1.3):
        assert_same_as_sequential(path, SamplePlan(every_s=step, threads=threads))


@needs_pyav
def test_codecs_that_honour_skipping_decode_fewer_frames(codec_clips: dict[str, Path]) -> None:
    """Non-reference frames are skipped where the decoder is proven exact, and only there."""
    assert len(codec_clips) == len(CODEC_CLIPS) > 0
    for name, path in codec_clips.items():
        seek = iter_samples(path, SamplePlan(every_s=0.28, strategy="seek"))
        assert len(list(seek)) == 18 and seek.strategy == "seek", name
        assert seek.decoded <= seek.grabbed, name
        if name in SKIPPING:
            assert index_packets(path).codec == SKIPPING[name]
            assert seek.decoded < 0.8 * seek.grabbed, (name, seek.decoded, seek.grabbed)
        else:
            assert seek.decoded >= seek.grabbed - 1, (name, seek.decoded, seek.grabbed)


@pytest.mark.testdata
@needs_pyav
def test_every_real_clip_samples_as_a_full_decode(testdata: Path) -> None:
    """Each real test clip (H.264 with and without B-frames, MPEG-4, MJPEG, a broken raw
    stream that falls back to sequential decoding): the seek strategy gives a full decode's
    frames, byte for byte."""
    clips = sorted(p for p in testdata.rglob("*") if p.suffix in {".mp4", ".avi", ".264"})
    assert len(clips) >= 11
    for path in clips:
        for step in (0.3, 1.3):
            plan = SamplePlan(every_s=step)
            sequential, expected = _frames(path, plan, "sequential")
            seek, got = _frames(path, plan, "seek")
            assert seek.strategy == ("sequential" if path.suffix == ".264" else "seek"), path
            assert [f[:3] for f in got] == [f[:3] for f in expected], path
            assert all(np.array_equal(a[3], b[3]) for a, b in zip(got, expected)), path


def test_runs_start_at_the_keyframe_or_the_gop_before_a_leading_picture() -> None:
    # Decode order: I0 P3 B1 B2 | I6 B4 B5 P8 B7 | I9 P10: packet 5 (pts 4) leads keyframe 4.
    pts = [0, 3, 1, 2, 6, 4, 5, 8, 7, 9, 10]
    key = [i in (0, 4, 9) for i in range(len(pts))]
    index = PacketIndex(pts, pts, key, [True] * len(pts), [40.0 * p for p in pts], "h264",
                        16, 16)
    assert runs_to_decode(index, [2]) == [(0, 2)]
    assert runs_to_decode(index, [7]) == [(4, 7)]
    assert runs_to_decode(index, [5]) == [(0, 5)]  # the leading picture needs the previous GOP
    assert runs_to_decode(index, [0, 10]) == [(0, 0), (9, 10)]
    assert runs_to_decode(index, [1, 4, 8]) == [(0, 1), (4, 8)]
    assert runs_to_decode(index, [3, 4, 8]) == [(0, 8)]  # adjacent runs merge


@needs_pyav
def test_auto_strategy_picks_by_how_much_is_kept(gop_videos: dict[str, Path], raw264: Path,
                                                 videos: Path) -> None:
    path = gop_videos["h264_gop25"]
    assert iter_samples(path, SamplePlan(every_s=1.0)).strategy == "seek"  # sparse
    assert iter_samples(path, SamplePlan(every_s=0.05)).strategy == "sequential"  # dense
    assert iter_samples(path, SamplePlan(mode="scene")).strategy == "sequential"
    forced = iter_samples(path, SamplePlan(every_s=1.0, strategy="sequential"))
    assert forced.strategy == "sequential"
    # No timestamps to index (raw H.264): sequential, even when asked for seek.
    assert iter_samples(raw264, SamplePlan(every_s=1.0, strategy="seek")).strategy == "sequential"
    # Display rotation (OpenCV turns the frames): sequential.
    rotated = videos / "rotated.mp4"
    subprocess.run([ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y",
                    "-display_rotation", "90", "-i", str(path), "-c", "copy", str(rotated)],
                   check=True)
    assert probe(rotated).rotation in (90, 270)
    assert iter_samples(rotated, SamplePlan(every_s=1.0)).strategy == "sequential"


def test_seek_without_pyav_falls_back_to_sequential(cfr: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "av", None)  # import av now raises ImportError
    assert not pyav_available() and index_packets(cfr) is None
    samples = iter_samples(cfr, SamplePlan(every_s=0.5, strategy="seek"))
    assert [f.frame_index for f in samples] == [0, 13, 25, 38]
    assert samples.strategy == "sequential" and samples.keyframe_interval_s is None


@needs_pyav
def test_not_exact_takes_keyframes_within_half_a_step(gop_videos: dict[str, Path]) -> None:
    path = gop_videos["h264_gop25"]  # keyframes at 0, 1, 2 ... 9 s
    exact = [f.t_ms for f in iter_samples(path, SamplePlan(every_s=2.3))]
    assert exact == [0, 2320, 4600, 6920, 9200]
    samples = iter_samples(path, SamplePlan(every_s=2.3, exact=False))
    frames = [(f.t_ms, f.frame_index, media.decode_index(f.image)) for f in samples]
    assert frames == [(0, 0, 0), (2000, 50, 50), (5000, 125, 125), (7000, 175, 175),
                      (9000, 225, 225)]
    assert samples.grabbed == 5  # keyframes only
    # Without a keyframe within half a step, the exact frame.
    dense = iter_samples(path, SamplePlan(every_s=0.4, exact=False))
    assert [f.t_ms for f in dense][:5] == [0, 400, 1000, 1200, 1600]  # 800 -> 1000: half a step


@needs_pyav
def test_a_file_that_does_not_demux_as_indexed_goes_on_sequentially(
        gop_videos: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    expect = pyav_source.PyAVSource._expect

    def fail_at_packet_100(packet, index, i):
        if i == 100:
            raise IndexMismatch(i)
        expect(packet, index, i)

    monkeypatch.setattr(pyav_source.PyAVSource, "_expect", staticmethod(fail_at_packet_100))
    path = gop_videos["h264_gop25"]
    plan = SamplePlan(every_s=0.7)
    _, expected = _frames(path, plan, "sequential")
    samples, got = _frames(path, plan, "seek")
    assert samples.strategy == "seek+sequential"
    assert [f[:3] for f in got] == [f[:3] for f in expected]


# --- robustness ------------------------------------------------------------------------------

TRUNCATED_SCRIPT = """
import json, sys
sys.path[:0] = [sys.argv[2], sys.argv[2] + "/tests"]
from helpers.media import decode_index
from pipeline.video import SamplePlan, VideoError, iter_samples
try:
    plan = SamplePlan(every_s=0.001, strategy=sys.argv[3])
    frames = [(f.t_ms, f.frame_index, decode_index(f.image))
              for f in iter_samples(sys.argv[1], plan)]
    print(json.dumps({"frames": frames}))
except VideoError as error:
    print(json.dumps({"error": str(error)}))
"""


@pytest.mark.parametrize("name, strategy", [
    ("cfr.mp4", "sequential"), ("faststart.mp4", "sequential"), ("raw.264", "sequential"),
    pytest.param("faststart.mp4", "seek", marks=needs_pyav)])
def test_truncated_file_yields_a_prefix_or_video_error(name: str, strategy: str, tmp_path: Path,
                                                       cfr: Path, videos: Path) -> None:
    """Decodable frames come out in order, or a VideoError. Runs in a subprocess so that a
    hang or a crash in the decoder fails the test instead of killing the run."""
    if name == "cfr.mp4":
        source = cfr
    elif ffmpeg_exe() is None:
        pytest.skip("imageio-ffmpeg is not installed")
    else:
        source = media.make_h264_video(videos / name, frames=50, faststart=True)
    data = source.read_bytes()
    truncated = tmp_path / name
    truncated.write_bytes(data[:len(data) // 2])
    done = subprocess.run([sys.executable, "-c", TRUNCATED_SCRIPT, str(truncated), str(ROOT),
                           strategy],
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    if "error" in result:
        assert str(truncated) in result["error"]
        return
    times, indexes, contents = zip(*result["frames"])
    assert 0 < len(contents) < 50
    assert list(contents) == sorted(set(contents)) and list(times) == sorted(set(times))
    assert list(indexes) == list(range(len(indexes)))  # the count of decoded frames
    if name == "raw.264":
        # No timestamps: a frame lost at the cut (a B-frame whose data came after the next
        # P-frame) shifts the estimated times of those after it.
        assert times == tuple(40 * i for i in indexes)
    else:
        assert times == tuple(40 * c for c in contents)  # timestamps name the real frame


def test_plan_validation() -> None:
    for bad in [dict(mode="slow"), dict(mode="fps"), dict(mode="count", count=0),
                dict(every_s=0), dict(ranges=(Range(2.0, 1.0),)), dict(min_sharpness=-1)]:
        with pytest.raises(ValueError, match="invalid sample plan"):
            SamplePlan(**bad)
    assert SamplePlan(ranges=[Range(1.0)]).ranges == (Range(1.0),)


# --- real footage ----------------------------------------------------------------------------

@pytest.mark.testdata
def test_real_raw_stream_with_garbage_frame_count(testdata: Path) -> None:
    path = testdata / "broken" / "error_i_p.264"
    info = probe(path)
    assert info.frame_count is None and (info.width, info.height) == (352, 288)
    samples = iter_samples(path, ALL_FRAMES, info)
    times = [f.t_ms for f in samples]
    assert len(times) == 6 and times == sorted(set(times))
    assert samples.estimated_timestamps == 5


@pytest.mark.testdata
def test_real_bframes_match_a_plain_read_loop(testdata: Path) -> None:
    path = testdata / "faces" / "man_640x320_bframes.mp4"
    cap = cv2.VideoCapture(str(path))
    reference = []
    while True:
        ok, image = cap.read()
        if not ok:
            break
        reference.append((round(cap.get(cv2.CAP_PROP_POS_MSEC)), image))
    cap.release()
    frames = list(iter_samples(path, ALL_FRAMES))
    assert [f.t_ms for f in frames] == [t for t, _ in reference]
    assert all(a.t_ms < b.t_ms for a, b in zip(frames, frames[1:]))
    assert all(np.array_equal(f.image, image) for f, (_, image) in zip(frames, reference))


@pytest.mark.testdata
def test_real_scene_cuts(testdata: Path) -> None:
    path = testdata / "negatives" / "bikes_scenecuts.mp4"
    samples = iter_samples(path, SamplePlan(mode="scene"))
    frames = [(f.frame_index, f.t_ms) for f in samples]
    # 5 hard cuts in 10 s (content deltas 33..59; the strongest non-cut, a fast pan, ~19).
    assert frames == [(0, 0), (30, 1200), (76, 3040), (137, 5480), (187, 7480), (242, 9680)]
