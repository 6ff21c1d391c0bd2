"""Open a video with OpenCV and learn its geometry, frame rate and length (``probe``).

Used before sampling (the sample stage and ``Sampler``) and by the download stage to check
that what it fetched is a decodable video.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import cv2

MAX_FPS = 1000.0
"""A reported rate above this is a stream time base (e.g. 90000), not a frame rate."""


class VideoError(Exception):
    """A video that cannot be opened or has no decodable frame (the message says which file)."""


@dataclass(frozen=True)
class VideoInfo:
    """What ``probe`` learned about a video.

    ``fps`` is 0 when unknown; ``frame_count`` is None when the container does not give a
    trustworthy one (raw streams without timestamps), and then ``duration_s`` is None too.
    Width and height are those of decoded frames (after OpenCV's automatic rotation).
    """

    width: int
    height: int
    fps: float
    frame_count: int | None
    duration_s: float | None
    rotation: int = 0
    """Degrees of the container's display rotation (OpenCV turns decoded frames by it)."""


def quiet_ffmpeg() -> None:
    """FFmpeg's own messages about broken input ("moov atom not found", damaged H.264 headers)
    would otherwise go straight to the terminal from inside OpenCV; every failure they stand for
    is reported once, classified, in the run's summary instead. Set OPENCV_FFMPEG_LOGLEVEL
    yourself (e.g. 24 for warnings) to see them. OpenCV reads it when its first capture opens
    (checked: set after ``import cv2``, it silences the same lines as before)."""
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")


def open_capture(path: Path, threads: int = 0) -> cv2.VideoCapture:
    """Open a capture, with a clear VideoError for the usual reasons it fails (``threads``:
    decoder threads, 0 for OpenCV's default)."""
    if not path.exists():
        raise VideoError(f"{path}: no such file")
    if not path.is_file():
        raise VideoError(f"{path}: not a file")
    if path.stat().st_size == 0:
        raise VideoError(f"{path}: empty file (0 bytes)")
    if not _utf8(str(path)):  # OpenCV crashes (SIGSEGV) on such a name; refuse it instead
        raise VideoError(f"{path!r}: the file name is not valid UTF-8, which OpenCV cannot open")
    quiet_ffmpeg()
    if threads > 0:
        cap = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG, [cv2.CAP_PROP_N_THREADS, threads])
    else:
        cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        cap.release()
        raise VideoError(f"{path}: OpenCV cannot open it (not a video, or an unsupported "
                         "container or codec)")
    return cap


def _utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _plausible_fps(value: float) -> float:
    return value if math.isfinite(value) and 0 < value <= MAX_FPS else 0.0


def probe(path: Path | str) -> VideoInfo:
    """Open a video, decode its first frame(s) and report its geometry, rate and length.

    Decodes two frames: the first proves the file is decodable and gives the true frame size;
    the second shows whether the stream has timestamps. Without them (raw streams) the
    container's frame count is garbage and is reported as None.
    """
    path = Path(path)
    cap = open_capture(path)
    try:
        fps = _plausible_fps(cap.get(cv2.CAP_PROP_FPS))
        reported_count = cap.get(cv2.CAP_PROP_FRAME_COUNT)
        rotation = cap.get(cv2.CAP_PROP_ORIENTATION_META)
        ok, image = cap.read()
        if not ok or image is None:
            raise VideoError(f"{path}: no decodable video frame")
        first_ms = cap.get(cv2.CAP_PROP_POS_MSEC)
        has_timestamps = not cap.grab() or cap.get(cv2.CAP_PROP_POS_MSEC) > first_ms
    finally:
        cap.release()
    count = (int(reported_count)
             if has_timestamps and math.isfinite(reported_count) and 0 < reported_count < 2**31
             else None)
    return VideoInfo(width=int(image.shape[1]), height=int(image.shape[0]), fps=fps,
                     frame_count=count, duration_s=count / fps if count and fps else None,
                     rotation=int(rotation) % 360 if math.isfinite(rotation) else 0)


def container_info(path: Path | str) -> VideoInfo | None:
    """What ``probe`` reports, read from the container's header alone (PyAV, nothing decoded:
    about a quarter of ``probe``'s CPU and no decoder threads to start), or None where the header
    is not enough to be sure: no PyAV, no frame count stored (raw streams, Matroska), a frame
    rate that OpenCV might read differently (average and guessed rates disagree), or anything
    PyAV cannot open. ``plan`` uses it: it needs lengths, not pixels. Width and height are the
    stored ones (a rotated phone video's are not turned); ``rotation`` is not read (0)."""
    try:
        # lazy: PyAV takes 0.18 s to import; --help and OpenCV-only runs never need it
        import av
    except ImportError:
        return None
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                return None
            stream = container.streams.video[0]
            count, rate, guessed = stream.frames, stream.average_rate, stream.guessed_rate
            width, height = stream.codec_context.width, stream.codec_context.height
    except Exception:  # noqa: BLE001 - whatever PyAV cannot read, OpenCV's probe decides on
        return None
    if not (count and 0 < count < 2**31 and rate and rate == guessed and width and height):
        return None
    fps = _plausible_fps(float(rate))
    if not fps:
        return None
    return VideoInfo(width=width, height=height, fps=fps, frame_count=count,
                     duration_s=count / fps)
