"""Generate small test videos whose frames carry their own index.

Every helper is independent: it takes a path and a few numbers, writes one file and returns the
path, so tests can build exactly the video they need in ``tmp_path`` in well under a second.

Frame content: ``index_frame(i)`` draws the index ``i`` as a 4 x 4 grid of big black/white
cells (16 bits, LSB first, row-major). The cells are large, so the code survives lossy codecs
(mp4v, H.264 with B-frames) and ``decode_index`` reads it back from a cell's centre. A test can
then check that the frame returned for a timestamp really is that frame.

``cv2.VideoWriter`` always works; the ffmpeg helpers need the binary from ``imageio-ffmpeg``
(``support.ffmpeg_exe()`` returns ``None`` without it, and tests skip).
"""
from __future__ import annotations

import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path

import cv2
import numpy as np

from helpers.support import ffmpeg_exe

Size = tuple[int, int]
Pattern = Callable[[int, Size], np.ndarray]

GRID = 4
"""The index code is a GRID x GRID grid of cells, one bit each."""


def index_frame(index: int, size: Size = (320, 240)) -> np.ndarray:
    """A BGR frame whose 16 grid cells spell ``index`` in binary (white = 1)."""
    width, height = size
    frame = np.zeros((height, width, 3), np.uint8)
    for bit in range(GRID * GRID):
        if index >> bit & 1:
            row, col = divmod(bit, GRID)
            y0, y1 = row * height // GRID, (row + 1) * height // GRID
            x0, x1 = col * width // GRID, (col + 1) * width // GRID
            frame[y0:y1, x0:x1] = 255
    return frame


def decode_index(image: np.ndarray) -> int:
    """Read back the index drawn by ``index_frame`` (from the centre of each cell)."""
    height, width = image.shape[:2]
    gray = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    value = 0
    for bit in range(GRID * GRID):
        row, col = divmod(bit, GRID)
        cy, cx = (2 * row + 1) * height // (2 * GRID), (2 * col + 1) * width // (2 * GRID)
        patch = gray[cy - 3:cy + 4, cx - 3:cx + 4]
        if patch.mean() > 127:
            value |= 1 << bit
    return value


def blurred_every(n: int, sigma: float = 12.0) -> Pattern:
    """A pattern: the index code over a fine checkerboard, every ``n``-th frame heavily blurred.

    The checkerboard makes sharp frames score a high Laplacian variance; the blur wipes it out
    but keeps the big index cells readable.
    """

    def pattern(index: int, size: Size) -> np.ndarray:
        width, height = size
        yy, xx = np.mgrid[0:height, 0:width]
        checker = (((yy // 4) + (xx // 4)) % 2 * 60).astype(np.uint8)
        frame = cv2.add(index_frame(index, size) // 2 + 40, np.dstack([checker] * 3))
        if index % n == 0:
            frame = cv2.GaussianBlur(frame, (0, 0), sigma)
        return frame

    return pattern


def shots(cuts: Sequence[int]) -> Pattern:
    """A pattern with hard cuts before each frame index in ``cuts``.

    Each shot is a different random grid of coloured blocks (seeded by the shot number) with a
    small square drifting across it, so frames inside a shot differ a little and frames across a
    cut differ a lot.
    """
    bounds = sorted(cuts)

    def pattern(index: int, size: Size) -> np.ndarray:
        width, height = size
        shot = sum(index >= cut for cut in bounds)
        blocks = np.random.default_rng(shot).integers(0, 256, (6, 8, 3), dtype=np.uint8)
        frame = cv2.resize(blocks, (width, height), interpolation=cv2.INTER_NEAREST)
        x = (index * 3) % (width - 20)
        frame[10:30, x:x + 20] = 255
        return frame

    return pattern


def make_video(path: Path | str, frames: int = 50, fps: float = 25.0,
               size: Size = (320, 240), pattern: Pattern = index_frame,
               fourcc: str = "mp4v") -> Path:
    """Write a constant-frame-rate video with ``cv2.VideoWriter`` (mp4v in .mp4, MJPG in .avi)."""
    path = Path(path)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, size)
    if not writer.isOpened():
        raise RuntimeError(f"cv2.VideoWriter cannot write {path} with {fourcc}")
    try:
        for index in range(frames):
            writer.write(pattern(index, size))
    finally:
        writer.release()
    return path


def _encode(path: Path, frames: int, fps: float, size: Size, pattern: Pattern,
            output_args: Sequence[str]) -> Path:
    """Pipe raw BGR frames into ffmpeg (input at ``fps``) and encode them with ``output_args``."""
    exe = ffmpeg_exe()
    if exe is None:
        raise RuntimeError("imageio-ffmpeg is not installed")
    width, height = size
    command = [exe, "-hide_banner", "-loglevel", "error", "-y",
               "-f", "rawvideo", "-pix_fmt", "bgr24", "-s", f"{width}x{height}",
               "-r", str(fps), "-i", "-", *output_args, str(path)]
    data = b"".join(pattern(index, size).tobytes() for index in range(frames))
    subprocess.run(command, input=data, check=True, capture_output=True, timeout=60)
    return path


def make_encoded_video(path: Path | str, output_args: Sequence[str], frames: int = 100,
                       fps: float = 25.0, size: Size = (160, 120)) -> Path:
    """Any codec ffmpeg can write: ``output_args`` name the encoder and its settings."""
    return _encode(Path(path), frames, fps, size, index_frame, output_args)


def make_h264_video(path: Path | str, frames: int = 50, fps: float = 25.0,
                    size: Size = (320, 240), pattern: Pattern = index_frame,
                    bframes: int = 3, faststart: bool = False) -> Path:
    """H.264 (libx264, with B-frames by default) via ffmpeg.

    The container follows the suffix; ``.264``/``.h264`` writes a raw Annex-B stream, which
    carries no timestamps at all. ``faststart`` puts the MP4 index first, so a truncated copy
    is still openable.
    """
    path = Path(path)
    args = ["-c:v", "libx264", "-preset", "veryfast", "-bf", str(bframes), "-g", "25",
            "-pix_fmt", "yuv420p"]
    if path.suffix in {".264", ".h264"}:
        args += ["-f", "h264"]
    if faststart:
        args += ["-movflags", "+faststart"]
    return _encode(path, frames, fps, size, pattern, args)


def make_gop_video(path: Path | str, frames: int = 100, fps: float = 25.0, gop: int = 25,
                   bframes: int = 3, open_gop: bool = False, size: Size = (160, 120),
                   pattern: Pattern = index_frame, codec: str = "libx264") -> Path:
    """H.264 (or ``codec="libx265"``: HEVC) with a keyframe exactly every ``gop`` frames
    (scene-cut detection off: the index pattern changes a lot from frame to frame), B-frames
    (with x264's B-pyramid: reference and non-reference B-frames) and, with ``open_gop``,
    leading B-frames that refer to the previous GOP. The container follows the suffix."""
    if codec == "libx265":
        params = ["-x265-params", f"keyint={gop}:min-keyint={gop}:scenecut=0:bframes={bframes}"
                  f":open-gop={int(open_gop)}:log-level=error"]
    else:
        params = ["-bf", str(bframes), "-x264-params",
                  f"keyint={gop}:min-keyint={gop}:scenecut=0:open-gop={int(open_gop)}"]
    args = ["-c:v", codec, "-preset", "veryfast", *params, "-pix_fmt", "yuv420p"]
    return _encode(Path(path), frames, fps, size, pattern, args)


def vfr_times_ms(frames: int, fast_ms: int = 40, slow_ms: int = 100, switch: int = 10) -> list[int]:
    """The presentation times ``make_vfr_video`` gives its frames: ``switch`` frames ``fast_ms``
    apart, then the rest ``slow_ms`` apart."""
    return [i * fast_ms if i < switch else switch * fast_ms + (i - switch) * slow_ms
            for i in range(frames)]


def make_vfr_video(path: Path | str, frames: int = 30, fast_ms: int = 40, slow_ms: int = 100,
                   switch: int = 10, size: Size = (320, 240),
                   pattern: Pattern = index_frame) -> Path:
    """A variable-frame-rate MP4 (H.264) whose frame ``i`` is shown at ``vfr_times_ms(...)[i]``.

    ``settb`` gives the stream a millisecond time base (the 1/fps input one would round the
    times), ``setpts`` rewrites the timestamps, ``-fps_mode passthrough`` keeps every frame with its own
    timestamp (no duplication to a constant rate), and a 1/1000 track timescale keeps them exact.
    """
    expr = (f"round(if(lt(N,{switch}),N*{fast_ms},{switch * fast_ms}+(N-{switch})*{slow_ms})"
            "/1000/TB)")
    args = ["-vf", f"settb=1/1000,setpts='{expr}'", "-fps_mode", "passthrough",
            "-c:v", "libx264", "-preset", "veryfast", "-bf", "0", "-g", "25",
            "-pix_fmt", "yuv420p", "-enc_time_base:v", "1:1000",
            "-video_track_timescale", "1000"]
    return _encode(Path(path), frames, 1000.0 / fast_ms, size, pattern, args)
