"""yt-dlp for listing: what videos a URL (a video, playlist, channel or search) stands for."""
from __future__ import annotations

import logging
import math
import os
from collections.abc import Iterator
from functools import partial
from typing import Any

from ..core.filters import VideoFilter, screen
from ..io.redact import mask_credentials
from .ids import short_hash, url_source_id

log = logging.getLogger(__name__)


def printable(text: str) -> str:
    """A file name as text that can be written anywhere: bytes that are not UTF-8 (kept by
    Python as lone surrogates) become U+FFFD."""
    return os.fsencode(text).decode("utf-8", "replace")


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


def expand_url(url: str, ytdlp_options: dict[str, Any] | None = None,
               video_filter: VideoFilter | None = None) -> list[dict[str, str]]:
    """Ask yt-dlp what videos ``url`` stands for, without downloading them.

    ``extract_flat="in_playlist"`` lists a playlist's or search's videos without visiting each.
    Whatever ``ytdlp_options`` say, listing downloads nothing and runs no postprocessor (yt-dlp
    runs ``pre_process`` ones even for a listing): ``plan`` runs nothing. With ``video_filter``,
    an entry it leaves out gets ``filtered: <why>``; the listing visits a video's page only when
    its entry cannot tell (``pipeline.core.filters.screen``).
    """
    # lazy: yt_dlp takes 0.66 s to import and runs of local files never need it
    import yt_dlp

    opts = {"quiet": True, "no_warnings": True, "noprogress": True, "extract_flat": "in_playlist",
            "logger": QuietLogger(), **(ytdlp_options or {}), **LISTING_ONLY}
    entries = []
    with yt_dlp.YoutubeDL(opts) as ydl:
        info = ydl.extract_info(url, download=False) or {}
        own_page = info.get("_type") not in ("playlist", "multi_video")  # a video's URL
        for e, video_url in _video_entries(info):
            extractor = e.get("extractor") or e.get("ie_key") or e.get("extractor_key") or "generic"
            video_id = str(e.get("id") or short_hash(video_url))
            entry: dict[str, Any] = {"sid": url_source_id(extractor, video_id, video_url), "url": video_url,
                                     "title": e.get("title") or ""}
            # what the listing already tells of the video, for ``plan`` (a run does not need it)
            entry.update({k: e[k] for k in ("duration", "width", "height") if e.get(k)})
            visited: dict[str, Any] = {}
            if video_filter is not None:
                why = screen(video_filter, e, partial(_visit, ydl, video_url, visited))
                if why is not None:
                    entry["filtered"] = why
            entry["seen"] = _filter_fields(visited or e)
            if visited or own_page:
                entry["page"] = True
            entries.append(entry)
    return entries


def _visit(ydl: Any, video_url: str, into: dict[str, Any]) -> dict[str, Any] | None:
    """A video's own page (its metadata, no media), kept in ``into`` for the saved listing."""
    full = ydl.extract_info(video_url, download=False)
    into.update(full or {})
    return full


_UNSAVED = frozenset({"url", "manifest_url", "fragment_base_url", "cookies"})
"""Fields of the format yt-dlp picked, merged into a video's page: a short-lived media link
(signed for this machine) and the cookies sent with it. Never written to the output folder."""


def _filter_fields(info: dict[str, Any]) -> dict[str, Any]:
    """The fields of a video's metadata a filter can read (text, numbers, flags), saved with its
    listing entry so that another filter is decided from them without asking the site again."""
    return {k: v for k, v in info.items() if not k.startswith("_") and k not in _UNSAVED and (
        isinstance(v, (str, int, bool)) or isinstance(v, float) and math.isfinite(v))}
