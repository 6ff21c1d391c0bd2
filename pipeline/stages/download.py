"""Download stage: fetch a URL's video with yt-dlp (or take a local file in place) and its metadata.

Output: ``videos/<sid>.<ext>`` (or one file per segment when only segments are downloaded) and
``videos/<sid>.info.json`` with the provenance every crop carries (title, uploader, licence, URL).
yt-dlp's own ``.part`` files make an interrupted download resume; our marker is written only once
the finished file is in place.
"""
from __future__ import annotations

import logging
import shutil
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from collections.abc import Iterator
from typing import Any

from tqdm import tqdm

from ..core.layout import OutputLayout
from ..config.schema import Config
from ..io.progress import bar
from ..core.records import Video
from ..sources.ytdlp import QuietLogger, printable
from ..io.files import write_json
from ..state.markers import fingerprint
from ..sources.blocked import HostGate
from ..video import probe
from .base import DOWNLOADS, Context, Produced, Result, Results, Stage

VERSION = "1"
log = logging.getLogger(__name__)

INFO_FIELDS = ("id", "title", "uploader", "channel", "license", "duration", "webpage_url",
               "original_url", "extractor", "upload_date", "width", "height", "fps")


@dataclass(frozen=True)
class VideoPart:
    """A file to sample: the whole video (offset 0) or one downloaded segment of it.

    ``offset_s`` is where the file starts in the original video, so timestamps stay those of the
    original (what a link to the source at that time needs). ``segment`` is the index of the
    config segment the file holds, or -1 when the file is the whole video.
    """

    path: str
    offset_s: float = 0.0
    segment: int = -1


@dataclass(frozen=True)
class DownloadResult(Result):
    """The files to sample and the video's metadata (``<sid>.info.json``'s fields)."""

    parts: tuple[VideoPart, ...]
    info: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {"parts": [asdict(p) for p in self.parts], "info": self.info}

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> DownloadResult:
        return cls(tuple(VideoPart(**p) for p in raw["parts"]), raw.get("info", {}))

    def facts(self) -> dict[str, str]:
        title = self.info.get("title")
        return {"title": title} if title else {}

    def video_file(self) -> str | None:
        return self.parts[0].path if self.parts else None


def stage_fingerprint(video: Video, config: Config) -> str:
    """What changes the downloaded bytes: the URL or file, the format and the sections asked for."""
    if video.kind == "file":
        st = Path(video.location).stat()
        return fingerprint(VERSION, video.location, st.st_size, st.st_mtime_ns)
    d = config.download
    sections = [(s.start, s.end) for s in video.segments] if d.sections_only else []
    return fingerprint(VERSION, video.location, d.format, sections,
                       {k: d.ytdlp[k] for k in sorted(d.ytdlp) if k in ("format_sort", "format")})


def find_ffmpeg() -> str | None:
    """An ffmpeg binary: the one on PATH, else the one the imageio-ffmpeg package ships."""
    found = shutil.which("ffmpeg")
    if found:
        return found
    try:
        # lazy: optional dependency (the ffmpeg extra)
        import imageio_ffmpeg
    except ImportError:
        return None
    try:
        return imageio_ffmpeg.get_ffmpeg_exe()
    except RuntimeError:
        return None


def _openable_path(video: Video, root: Path) -> tuple[str, list[str]]:
    """The path to decode a local file from, and the outputs that path adds.

    Local files are used in place. A file name that is not valid UTF-8 cannot be handed to
    OpenCV, so such a file is reached through a symlink named after its source id instead.
    """
    try:
        video.location.encode("utf-8")
        return video.location, []
    except UnicodeEncodeError:
        suffix = Path(video.location).suffix.encode("ascii", "replace").decode()
        link = OutputLayout(root).video_file(video.sid, suffix)
        link.parent.mkdir(parents=True, exist_ok=True)
        link.unlink(missing_ok=True)
        link.symlink_to(video.location)
        return str(link), [str(link.relative_to(root))]


def _local(video: Video, root: Path) -> Produced[DownloadResult]:
    info_path = OutputLayout(root).video_info(video.sid)
    path, extra = _openable_path(video, root)
    vi = probe(path)
    info = {"id": video.sid, "title": printable(Path(video.location).name), "uploader": None,
            "license": None, "duration": vi.duration_s, "webpage_url": video.url,
            "original_url": printable(video.location), "extractor": "file", "upload_date": None,
            "width": vi.width, "height": vi.height, "fps": vi.fps}
    write_json(info_path, info)
    return [str(info_path.relative_to(root)), *extra], DownloadResult((VideoPart(path),), info)


def ytdlp_options(video: Video, config: Config, outdir: Path, progress: bool) -> dict[str, Any]:
    """The yt-dlp options mapping: ours first, then the user's ``download.ytdlp`` on top.

    The output template is built from our source id alone, so no title can steer where a file
    is written.
    """
    d = config.download
    opts: dict[str, Any] = {
        "format": d.format,
        "retries": d.retries,
        "fragment_retries": d.retries,
        "socket_timeout": d.socket_timeout,
        "noplaylist": True,
        "continuedl": True,
        "quiet": True,
        "no_warnings": True,
        "noprogress": not progress,
        "restrictfilenames": True,
        "logger": QuietLogger(),
    }
    ffmpeg = find_ffmpeg()
    if ffmpeg:
        opts["ffmpeg_location"] = ffmpeg
    if video.segments and d.sections_only:
        if ffmpeg:
            # lazy: yt_dlp takes 0.66 s to import and runs of local files never need it
            from yt_dlp.utils import download_range_func

            ranges = [(s.start, s.end if s.end is not None else float("inf")) for s in video.segments]
            opts["download_ranges"] = download_range_func(None, ranges)
            opts["force_keyframes_at_cuts"] = True  # exact cut points, so timestamps stay exact
        else:
            log.warning("%s: no ffmpeg found (install it or `pip install imageio-ffmpeg`): "
                        "downloading the whole video instead of its segments", video.sid)
    opts.update(d.ytdlp)
    # Each section needs its own name, or yt-dlp skips the second one as "already downloaded".
    name = f"{video.sid}.%(section_start)s-%(section_end)s.%(ext)s" if "download_ranges" in opts \
        else f"{video.sid}.%(ext)s"
    opts["outtmpl"] = {"default": str(outdir / name)}
    opts["paths"] = {}
    return opts


@contextmanager
def _ffmpeg_for_ytdlp(location: str | None) -> Iterator[None]:
    """Point yt-dlp at ``location`` for the duration of one download.

    yt-dlp's check for ffmpeg before a partial download ignores the ``ffmpeg_location`` option;
    it reads the post-processor's context variable, which is set here and restored after, so
    nothing leaks into later yt-dlp use in the same thread.
    """
    if not location:
        yield
        return
    # lazy: yt_dlp takes 0.66 s to import and runs of local files never need it
    from yt_dlp.postprocessor.ffmpeg import FFmpegPostProcessor

    token = FFmpegPostProcessor._ffmpeg_location.set(location)
    try:
        yield
    finally:
        FFmpegPostProcessor._ffmpeg_location.reset(token)


def _parts_from(info: dict[str, Any], video: Video, root: Path) -> list[VideoPart]:
    """One part per file yt-dlp wrote; segment files are matched back by their start time."""
    parts = []
    for req in info.get("requested_downloads") or [info]:
        path = Path(req.get("filepath") or req.get("_filename") or "")
        if not path.is_file():
            raise FileNotFoundError(f"yt-dlp reported {path} but it is not there")
        start = req.get("section_start")
        if start is None:
            parts.append(VideoPart(str(path.relative_to(root))))
            continue
        segment = min(range(len(video.segments)), key=lambda i: abs(video.segments[i].start - start))
        parts.append(VideoPart(str(path.relative_to(root)), float(start), segment))
    return parts


def _remote(video: Video, config: Config, root: Path, progress: bool) -> Produced[DownloadResult]:
    # lazy: yt_dlp takes 0.66 s to import and runs of local files never need it
    import yt_dlp

    layout = OutputLayout(root)
    outdir = layout.videos_dir
    outdir.mkdir(parents=True, exist_ok=True)

    def fetch(proxy: str | None) -> dict[str, Any] | None:
        opts = ytdlp_options(video, config, outdir, progress)
        if proxy is not None:
            opts["proxy"] = proxy
        if progress:
            opts["progress_hooks"] = [_TqdmHook(video.sid)]
        try:
            with _ffmpeg_for_ytdlp(opts.get("ffmpeg_location")), yt_dlp.YoutubeDL(opts) as ydl:
                return ydl.extract_info(video.location, download=True)
        finally:
            for hook in opts.get("progress_hooks", []):
                if isinstance(hook, _TqdmHook):
                    hook.close()

    # a bot check or HTTP 429 pauses, moves to the next proxy, or stops the host (pipeline.sources.blocked)
    info = HostGate(layout.state_dir, video.location, config.download).attempt(fetch)
    if info is None:
        raise RuntimeError(f"yt-dlp returned nothing for {video.location}")
    if info.get("_type") in ("playlist", "multi_video"):
        raise ValueError(f"{video.location} is a playlist, not a video")
    parts = _parts_from(info, video, root)
    meta = {k: info.get(k) for k in INFO_FIELDS}
    meta["webpage_url"] = meta["webpage_url"] or video.location
    # Boxes are in the pixels of the file we decode, so its size and rate are what count.
    vi = probe(root / parts[0].path)
    meta.update(width=vi.width, height=vi.height, fps=vi.fps)
    info_path = layout.video_info(video.sid)
    write_json(info_path, meta)
    outputs = [p.path for p in parts] + [str(info_path.relative_to(root))]
    return outputs, DownloadResult(tuple(parts), meta)


class _TqdmHook:
    """A yt-dlp progress hook drawing one tqdm bar per download."""

    def __init__(self, sid: str):
        self.sid = sid
        self.bar: tqdm | None = None

    def __call__(self, d: dict[str, Any]) -> None:
        if d.get("status") == "downloading":
            total = d.get("total_bytes") or d.get("total_bytes_estimate")
            if self.bar is None:
                self.bar = bar(total=total, unit="B", unit_scale=True, desc=f"download {self.sid[:28]}")
            if total and self.bar.total != total:
                self.bar.total = total
            self.bar.n = d.get("downloaded_bytes") or 0
            self.bar.refresh()
        elif d.get("status") in ("finished", "error"):
            self.close()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def run(video: Video, config: Config, root: Path, progress: bool = False) -> Produced[DownloadResult]:
    """Fetch (or locate) the video; returns (outputs relative to root, result for the marker)."""
    if video.kind == "file":
        return _local(video, root)
    return _remote(video, config, root, progress)


class DownloadStage(Stage[DownloadResult]):
    name, version, result = "download", VERSION, DownloadResult
    work = DOWNLOADS

    def has_work(self, video: Video) -> bool:
        """A local file is taken in place: the stage only reads its header into its info."""
        return video.kind == "url"

    def expected(self, config: Config, video: Video, duration_s: float | None, frame_s: float
                 ) -> int | None:
        """A URL is one download; a local file none."""
        return 1 if self.has_work(video) else 0

    def fingerprint(self, ctx: Context, upstream: str) -> str:
        return stage_fingerprint(ctx.video, ctx.config)

    def run(self, ctx: Context, inputs: Results) -> Produced[DownloadResult]:
        return run(ctx.video, ctx.config, ctx.root, ctx.progress)


STAGE = DownloadStage()
