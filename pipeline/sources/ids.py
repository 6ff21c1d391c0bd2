"""Stable, file-name-safe source ids: the same video gets the same id on every run and machine."""
from __future__ import annotations

import hashlib
import re
from pathlib import Path

_GENERIC_EXTRACTORS = frozenset({"generic", "html5", "html5mediaembed"})


_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")


def short_hash(text: str, n: int = 8) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:n]


def safe_part(text: str, limit: int = 60) -> str:
    """A piece of a file name that is valid on Linux, macOS and Windows whatever ``text`` holds."""
    cleaned = _UNSAFE.sub("_", text).strip("_")[:limit]
    return cleaned or "x"


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
