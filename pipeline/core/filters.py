"""Which listed videos a run takes: conditions on yt-dlp's metadata (licence, duration, views,
upload date), checked when a URL is listed, so a video left out is never downloaded.

The conditions are yt-dlp's own match-filter syntax (``license ~= 'Creative Commons' &
duration < 600``), evaluated by yt-dlp (``yt_dlp.utils.match_str``) one condition at a time, so
a video left out says which conditions it failed and with what values. The config may give such
a string as it is, or the friendlier keys of ``from_fields`` that compile to one.
"""
from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

CREATIVE_COMMONS = r"(?i)creative.?commons|\bcc[ -]?(by|0)\b|^by(-nc)?(-nd|-sa)?$"
"""What a Creative Commons licence looks like in yt-dlp's ``license`` field: YouTube's
"Creative Commons Attribution license (reuse allowed)", Vimeo's codes (``by``, ``by-nc-sa``),
``CC BY-SA 4.0``, ``cc0`` and creativecommons.org URLs (archive.org)."""

_PARTS = re.compile(r"(?<!\\)&")
"""Where yt-dlp splits a filter into conditions (``match_str``): at each unescaped ``&``."""
_FIELD = re.compile(r"\s*!?\s*([a-z_]+)")


@dataclass(frozen=True)
class Condition:
    """One condition: a yt-dlp match-filter expression, and how a person says it (for the
    reason a video is left out)."""

    expression: str
    words: str

    @property
    def field(self) -> str:
        """The metadata field the condition reads (every yt-dlp condition starts with it)."""
        m = _FIELD.match(self.expression)
        return m.group(1) if m else ""


@dataclass(frozen=True)
class VideoFilter:
    """Conditions a video must all meet."""

    conditions: tuple[Condition, ...]

    @property
    def expression(self) -> str:
        """The whole filter as one yt-dlp match-filter string (what the saved listing records)."""
        return " & ".join(c.expression for c in self.conditions)

    def __and__(self, other: VideoFilter | None) -> VideoFilter:
        return self if other is None else VideoFilter(self.conditions + other.conditions)

    def failing(self, info: dict[str, Any], incomplete: bool = False) -> list[Condition]:
        """The conditions ``info`` does not meet. ``incomplete``: a field ``info`` lacks passes
        (a listing's entry holds only some fields), as yt-dlp does for flat playlist entries."""
        # lazy: yt_dlp takes 0.66 s to import and configs without a filter never need it
        from yt_dlp.utils import match_str

        failed = []
        for c in self.conditions:
            try:
                ok = match_str(c.expression, info, incomplete)
            except ValueError:  # e.g. a text operator on a number: the video cannot meet it
                ok = False
            if not ok:
                failed.append(c)
        return failed

    def reason(self, info: dict[str, Any], incomplete: bool = False) -> str | None:
        """Why ``info`` is left out (``needs a Creative Commons licence (license: Standard
        YouTube License)``), or None when it meets every condition (``incomplete`` as in
        ``failing``)."""
        failed = self.failing(info, incomplete)
        if not failed:
            return None
        return "; ".join(f"needs {c.words} ({c.field}: {_shown(info.get(c.field))})" for c in failed)


SHOWN_CHARS = 80
"""The most of a field's value a reason quotes: a site's licence text can be a paragraph."""
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]+")


def _shown(value: Any) -> str:
    """A metadata value as a reason quotes it: one line, no terminal control characters (the
    site chose the text), at most ``SHOWN_CHARS``."""
    if value is None:
        return "none"
    text = _CONTROL.sub(" ", str(value)).strip()
    return text if len(text) <= SHOWN_CHARS else text[:SHOWN_CHARS - 3] + "..."


def parse_expression(text: str) -> VideoFilter:
    """A yt-dlp match-filter string as a ``VideoFilter``; ``ValueError`` naming the condition
    yt-dlp cannot read (checked here, at config load, not when the first video is listed)."""
    # lazy: yt_dlp takes 0.66 s to import and configs without a filter never need it
    from yt_dlp.utils import match_str

    parts = [p.strip() for p in _PARTS.split(text)]
    if not text.strip() or not all(parts):
        raise ValueError(f"'{text}' has an empty condition; write conditions joined by &, e.g. "
                         "\"license ~= 'Creative Commons' & duration < 600\"")
    for part in parts:
        try:
            match_str(part, {}, incomplete=True)  # reads the condition; no field is there
        except ValueError:
            raise ValueError(f"'{part}' is not a yt-dlp match-filter condition (e.g. duration < 600, "
                             "license ~= 'Creative Commons', view_count >= 100, !is_live)") from None
    return VideoFilter(tuple(Condition(p, p) for p in parts))


def from_fields(license: str | None = None, min_duration: float | None = None,
                max_duration: float | None = None, min_views: int | None = None,
                uploaded_after: str | None = None, uploaded_before: str | None = None,
                match: str | None = None) -> VideoFilter:
    """The config's friendly keys as one filter. Dates are ``YYYYMMDD`` (yt-dlp's
    ``upload_date``, compared as text, which orders such dates), both ends included;
    durations are whole seconds (yt-dlp compares numbers as integers)."""
    conditions = []
    if license is not None:
        if license == "creative-commons":
            conditions.append(Condition(f"license ~= '{CREATIVE_COMMONS}'", "a Creative Commons licence"))
        else:
            conditions.append(Condition(f"license ~= '(?i){re.escape(license)}'",
                                        f"a licence containing '{license}'"))
    if min_duration is not None:
        conditions.append(Condition(f"duration >= {math.ceil(min_duration)}",
                                    f"a length of at least {math.ceil(min_duration)} s"))
    if max_duration is not None:
        conditions.append(Condition(f"duration <= {math.floor(max_duration)}",
                                    f"a length of at most {math.floor(max_duration)} s"))
    if min_views is not None:
        conditions.append(Condition(f"view_count >= {min_views}", f"at least {min_views} views"))
    if uploaded_after is not None:
        conditions.append(Condition(f"upload_date >= {uploaded_after}",
                                    f"an upload date on or after {_day(uploaded_after)}"))
    if uploaded_before is not None:
        conditions.append(Condition(f"upload_date <= {uploaded_before}",
                                    f"an upload date on or before {_day(uploaded_before)}"))
    extra = parse_expression(match) if match is not None else None
    return VideoFilter(tuple(conditions)) & extra


def _day(yyyymmdd: str) -> str:
    return f"{yyyymmdd[:4]}-{yyyymmdd[4:6]}-{yyyymmdd[6:]}"


def screen(video_filter: VideoFilter, listed: dict[str, Any],
           fetch: Callable[[], dict[str, Any] | None]) -> str | None:
    """Why a listed video is left out, or None when it is taken.

    A playlist's or search's entry holds only some metadata (YouTube's: title, duration, views;
    no licence, no upload date). What it holds decides when it can: a condition it fails leaves
    the video out, and when it meets every condition the video is taken. Otherwise ``fetch``
    reads the video's own metadata (one page, no media). A video whose metadata cannot be read
    (private, removed, blocked) is taken: its download then fails and records why, which the
    availability report shows.
    """
    decided, why = decide(video_filter, listed)
    if decided:
        return why
    try:
        full = fetch()
    except Exception:  # yt-dlp's DownloadError and what an extractor lets through alike
        return None
    return video_filter.reason(full or {})


def decide(video_filter: VideoFilter, seen: dict[str, Any], page: bool = False) -> tuple[bool, str | None]:
    """What ``screen`` says of a video from ``seen`` alone: ``(True, why)`` (``why`` None: taken),
    or ``(False, None)`` when only its page could tell. ``page``: ``seen`` is the video's own
    metadata, which always decides (a field it lacks fails), as after ``screen``'s visit."""
    if page:
        return True, video_filter.reason(seen)
    rejected = video_filter.reason(seen, incomplete=True)
    if rejected is not None:
        return True, rejected
    if not video_filter.failing(seen):
        return True, None
    return False, None
