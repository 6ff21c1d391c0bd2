"""yt-dlp for listing: what videos a URL (a video, playlist, channel or search) stands for."""
from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from typing import Any

from .ids import short_hash, url_source_id

log = logging.getLogger(__name__)


def printable(text: str) -> str:
    """A file name as text that can be written anywhere: bytes that are not UTF-8 (kept by
    Python as lone surrogates) become U+FFFD."""
    return os.fsencode(text).decode("utf-8", "replace")


class QuietLogger:
    """yt-dlp's messages into our log: its errors reach the user once, through our summary."""

    def debug(self, msg: str) -> None:
        log.debug("yt-dlp: %s", msg)

    def info(self, msg: str) -> None:
        log.debug("yt-dlp: %s", msg)

    def warning(self, msg: str) -> None:
        log.info("yt-dlp: %s", msg)

    def error(self, msg: str) -> None:
        log.debug("yt-dlp: %s", msg)


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


def expand_url(url: str, ytdlp_options: dict[str, Any] | None = None) -> list[dict[str, str]]:
    """Ask yt-dlp what videos ``url`` stands for, without downloading them.

    ``extract_flat="in_playlist"`` lists a playlist's or search's videos without visiting each.
    Whatever ``ytdlp_options`` say, listing downloads nothing and runs no postprocessor (yt-dlp
    runs ``pre_process`` ones even for a listing): ``plan`` runs nothing.
    """
    # lazy: yt_dlp takes 0.66 s to import and runs of local files never need it
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
