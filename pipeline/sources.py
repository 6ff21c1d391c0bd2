"""Turn the config's ``sources`` entries into videos with stable, file-name-safe ids.

A playlist, channel or search URL expands into its videos; a folder into its video files. The
expansion of a URL is cached under ``state/sources/`` so a resumed run does not ask the site again
(and a search that would return other results today does not change a dataset half built).
"""
from __future__ import annotations

import hashlib
import os
import logging
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .config import Config, Segment, Source, no_such_path
from .errors import mask_credentials
from .ownership import MARKER
from .state import State, read_json_object, write_json

VIDEO_EXTENSIONS = frozenset({".mp4", ".m4v", ".mkv", ".webm", ".mov", ".avi", ".mpg", ".mpeg",
                              ".ts", ".mts", ".m2ts", ".flv", ".wmv", ".3gp", ".ogv", ".264",
                              ".h264", ".hevc", ".265"})
log = logging.getLogger(__name__)
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")


def short_hash(text: str, n: int = 8) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:n]


def safe_part(text: str, limit: int = 60) -> str:
    """A piece of a file name that is valid on Linux, macOS and Windows whatever ``text`` holds."""
    cleaned = _UNSAFE.sub("_", text).strip("_")[:limit]
    return cleaned or "x"


def printable(text: str) -> str:
    """A file name as text that can be written anywhere: bytes that are not UTF-8 (kept by
    Python as lone surrogates) become U+FFFD."""
    return os.fsencode(text).decode("utf-8", "replace")


def url_source_id(extractor: str, video_id: str, url: str) -> str:
    """``<extractor>-<video id>``; ids that needed cleaning, and generic URLs, get a hash suffix.

    Generic extractors name a video after its file or page name, so two servers' ``video.mp4``
    would collide without the URL hash.
    """
    ext = safe_part(extractor.lower(), 30)
    vid = safe_part(video_id)
    sid = f"{ext}-{vid}"
    if vid != video_id or ext in _GENERIC_EXTRACTORS:
        sid += f"-{short_hash(url)}"
    return sid


def file_source_id(path: Path) -> str:
    """``file-<stem>-<8 hex of the absolute path hash>``."""
    absolute = str(path.resolve())
    return f"file-{safe_part(path.stem, 40)}-{short_hash(absolute)}"


class QuietLogger:
    """yt-dlp's messages into our log: its errors reach the user once, through our summary.
    A proxy's password is masked in them."""

    def debug(self, msg: str) -> None:
        log.debug("yt-dlp: %s", mask_credentials(msg))

    def info(self, msg: str) -> None:
        log.debug("yt-dlp: %s", mask_credentials(msg))

    def warning(self, msg: str) -> None:
        log.info("yt-dlp: %s", mask_credentials(msg))

    def error(self, msg: str) -> None:
        log.debug("yt-dlp: %s", mask_credentials(msg))


@dataclass(frozen=True)
class Video:
    """One unit of work: a single video, with what the config says about it."""

    sid: str
    kind: str  # "url" or "file"
    location: str  # the video's URL, or the absolute path of a local file
    spec_index: int  # which entry of ``sources`` it came from
    label: str | None = None
    segments: tuple[Segment, ...] = ()
    title: str | None = None


@dataclass
class Expansion:
    """The videos of all entries, and the entries that could not be expanded (with why)."""

    videos: list[Video] = field(default_factory=list)
    failures: list[tuple[str, int, str, str]] = field(default_factory=list)  # sid, index, class, msg


def _is_output(folder: Path, output: Path) -> bool:
    """An output folder of this tool (ours, or another config's): never listed as sources."""
    return (folder / MARKER).is_file() or folder.resolve() == output


def _list_folder(folder: Path, output: Path) -> list[Path]:
    found = []
    for here, dirs, files in os.walk(folder):
        dirs[:] = [d for d in dirs if not _is_output(Path(here, d), output)]
        found += [Path(here, f) for f in files if Path(f).suffix.lower() in VIDEO_EXTENSIONS
                  and not f.startswith(".") and Path(here, f).is_file()]
    return sorted(found)


def _path_videos(spec: Source, index: int, output: Path) -> list[Video]:
    path = Path(spec.path)  # type: ignore[arg-type]
    if not path.exists():
        raise FileNotFoundError(no_such_path(path))
    files = _list_folder(path, output) if path.is_dir() else [path]
    if path.is_dir() and not files:
        raise FileNotFoundError(f"no video files in folder {path} "
                                f"(looked for {', '.join(sorted(VIDEO_EXTENSIONS))})")
    return [Video(file_source_id(f), "file", str(f.resolve()), index, spec.label,
                  tuple(spec.segments), printable(f.stem)) for f in files]


def local_source_problems(config: Config) -> list[str]:
    """``sources.N.path: ...`` for each local source a run would fail (``not-found``): a path
    that is not there, or a folder with no videos. A run fails those sources and does the
    others, so ``validate`` warns about them rather than refusing the config."""
    output = config.output_dir.resolve()
    problems = []
    for index, spec in enumerate(config.sources):
        if spec.path is None:
            continue
        try:
            _path_videos(spec, index, output)
        except FileNotFoundError as exc:
            problems.append(f"sources.{index}.path: {exc}")
    return problems


_GENERIC_EXTRACTORS = frozenset({"generic", "html5", "html5mediaembed"})
"""Extractors whose ids come from file or page names, so they repeat across sites."""


def _video_entries(info: dict[str, Any]) -> Iterator[tuple[dict[str, Any], str]]:
    """(entry, URL to download it again) for each video of a yt-dlp result.

    A playlist entry's ``url`` is the video's own page (or, for HTML5 embeds, the media file);
    its ``webpage_url`` may be the playlist's page. A single video's ``url`` is a short-lived
    media link, so its ``webpage_url`` is the one to keep.
    """
    if info.get("_type") in ("playlist", "multi_video"):
        for entry in info.get("entries") or []:
            if not entry:
                continue
            if entry.get("_type") in ("playlist", "multi_video"):
                yield from _video_entries(entry)
            else:
                yield entry, entry.get("url") or entry.get("webpage_url") or ""
    else:
        yield info, info.get("webpage_url") or info.get("original_url") or info.get("url") or ""


LISTING_ONLY = {"simulate": True, "skip_download": True, "postprocessors": []}
"""yt-dlp options that make a listing only a listing, over the config's own."""


def expand_url(url: str, ytdlp_options: dict[str, Any] | None = None) -> list[dict[str, str]]:
    """Ask yt-dlp what videos ``url`` stands for, without downloading them.

    ``extract_flat="in_playlist"`` lists a playlist's or search's videos without visiting each.
    Whatever ``ytdlp_options`` say, listing downloads nothing and runs no postprocessor (yt-dlp
    runs ``pre_process`` ones even for a listing): ``plan`` runs nothing.
    """
    import yt_dlp

    opts = {"quiet": True, "no_warnings": True, "noprogress": True, "extract_flat": "in_playlist",
            "logger": QuietLogger(), **(ytdlp_options or {}), **LISTING_ONLY}
    with yt_dlp.YoutubeDL(opts) as ydl:
        info = ydl.extract_info(url, download=False)
    entries = []
    for e, video_url in _video_entries(info or {}):
        extractor = e.get("extractor") or e.get("ie_key") or e.get("extractor_key") or "generic"
        video_id = str(e.get("id") or short_hash(video_url))
        entry = {"sid": url_source_id(extractor, video_id, video_url), "url": video_url,
                 "title": e.get("title") or ""}
        # what the listing already tells of the video, for ``plan`` (a run does not need it)
        entry.update({k: e[k] for k in ("duration", "width", "height") if e.get(k)})
        entries.append(entry)
    return entries


def expand_sources(config: Config, state: State,
                   expander: Callable[[str, dict], list[dict[str, str]]] | None = None,
                   refresh: bool = False) -> Expansion:
    """All videos of the config in order; the same video twice is kept once.

    ``expander`` lists a URL; by default ``expand_url`` through the host's gate
    (``pipeline.blocked``: a bot check or HTTP 429 pauses, rotates proxies or stops the host).

    Which entry's label and segments it takes: the most specific path entry (a file over a
    folder holding it, a subfolder over its parent, whatever their order), else the first entry.
    """
    if expander is None:
        from .blocked import gated  # here: it imports this module

        expander = gated(expand_url, state.dir, config.download)
    out = Expansion()
    position: dict[str, int] = {}
    ytdlp_options = _expansion_options(config)
    output = config.output_dir.resolve()
    for index, spec in enumerate(config.sources):
        try:
            if spec.path is not None:
                videos = _path_videos(spec, index, output)
            else:
                videos = _cached_url_videos(spec, index, state, expander, ytdlp_options, refresh)
        except Exception as exc:  # one bad entry must not stop the others
            from .errors import classify

            sid = (file_source_id(Path(spec.path)) if spec.path is not None
                   else f"url-{short_hash(spec.url or '')}")
            kind, message = classify(exc)
            out.failures.append((sid, index, kind, message))
            continue
        for v in videos:
            if v.sid not in position:
                position[v.sid] = len(out.videos)
                out.videos.append(v)
            elif _specificity(config, v) > _specificity(config, out.videos[position[v.sid]]):
                out.videos[position[v.sid]] = v
    return out


def _specificity(config: Config, video: Video) -> int:
    """How closely a video's entry names it: the depth of the entry's path (URLs: 0)."""
    path = config.sources[video.spec_index].path
    return 0 if path is None else len(Path(path).resolve().parts)


def cap_per_source(expansion: Expansion, limit: int | None) -> Expansion:
    """At most ``limit`` videos of each ``sources`` entry, the first listed (a trial run)."""
    if limit is None:
        return expansion
    taken: dict[int, int] = {}
    videos = []
    for v in expansion.videos:
        taken[v.spec_index] = taken.get(v.spec_index, 0) + 1
        if taken[v.spec_index] <= limit:
            videos.append(v)
    return Expansion(videos, expansion.failures)


def _expansion_options(config: Config) -> dict[str, Any]:
    """The user's yt-dlp options that matter to listing (cookies, proxies, ...), plus timeouts."""
    opts = dict(config.download.ytdlp)
    opts.setdefault("socket_timeout", config.download.socket_timeout)
    opts.setdefault("retries", config.download.retries)
    return opts


def _cached_url_videos(spec: Source, index: int, state: State,
                       expander: Callable[[str, dict], list[dict[str, str]]],
                       ytdlp_options: dict[str, Any], refresh: bool) -> list[Video]:
    cache = state.dir / "sources" / f"{short_hash(spec.url or '', 16)}.json"
    entries = None
    if cache.exists() and not refresh:
        entries = (read_json_object(cache) or {}).get("entries")
        valid = isinstance(entries, list) and all(
            isinstance(e, dict) and isinstance(e.get("sid"), str) and isinstance(e.get("url"), str)
            for e in entries)
        entries = entries if valid and entries else None  # damaged: list the URL again
    if entries is None:
        entries = expander(spec.url or "", ytdlp_options)
        if not entries:
            raise LookupError(f"{spec.url} lists no videos")
        write_json(cache, {"url": spec.url, "entries": entries})
    return [Video(e["sid"], "url", e["url"], index, spec.label, tuple(spec.segments),
                  e.get("title") or None) for e in entries]
