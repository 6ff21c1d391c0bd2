"""Failure classes a user can act on, recorded in ``state/<stage>/<sid>.error.json``.

yt-dlp reports everything as ``DownloadError`` with a message; the class tells a user whether to
retry later (network), give cookies or a proxy (geo/bot-check), or drop the source (unavailable,
not a video).
"""
from __future__ import annotations

import errno
import re
import traceback
from pathlib import Path
from typing import Any

UNAVAILABLE = "unavailable"
GEO_OR_BOT = "geo-or-bot-check"
NETWORK = "network"
NOT_A_VIDEO = "not-a-video"
NOT_FOUND = "not-found"
CONFIG = "config"
ERROR = "error"


class SourceConfigError(ValueError):
    """The config asks something of a source that the source cannot give (a segment after its
    end); the message starts with the key path, like config errors do."""


class OutputUnwritable(RuntimeError):
    """The output folder is full or read-only: every further unit would fail the same way, so
    the run stops (its finished units are kept) instead of failing source after source."""


_FATAL_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM}


def unwritable_output(exc: BaseException, root: Path) -> OutputUnwritable | None:
    """An ``OutputUnwritable`` when ``exc`` is a write failure inside ``root``, else None."""
    if not isinstance(exc, OSError) or exc.errno not in _FATAL_ERRNOS:
        return None
    where = Path(str(exc.filename)) if exc.filename else None
    inside = where is not None and str(where.resolve()).startswith(str(Path(root).resolve()))
    if exc.errno != errno.ENOSPC and not inside:
        return None
    reason = {errno.ENOSPC: "is full", errno.EDQUOT: "is over its quota",
              errno.EROFS: "is on a read-only file system"}.get(exc.errno, "is not writable")
    return OutputUnwritable(
        f"the output folder {root} {reason} ({exc.strerror}: {exc.filename}); finished work is "
        "kept: free space or fix permissions, then run the same command again")

_PATTERNS: list[tuple[str, re.Pattern[str]]] = [
    (GEO_OR_BOT, re.compile(r"not a bot|sign in to confirm|geo.?restrict|available in your "
                            r"country|blocked it in your country|HTTP Error 429|cookies", re.I)),
    (UNAVAILABLE, re.compile(r"video unavailable|private video|has been removed|account .*terminated|"
                             r"no longer available|HTTP Error 40[34]|members.only|is not available|"
                             r"does not exist", re.I)),
    (NOT_A_VIDEO, re.compile(r"unsupported url|no video formats|no video could be found|not a video|"
                             r"invalid data found|moov atom not found|"
                             r"cannot open video|no decodable|no video stream", re.I)),
    (NETWORK, re.compile(r"timed? ?out|connection|network|temporary failure|name or service|"
                         r"getaddrinfo|HTTP Error 5\d\d|incomplete|urlopen error|remote end closed|"
                         r"reset by peer|unreachable|ssl|bytes read|more expected|"
                         r"downloaded \d+ bytes, expected", re.I)),
]

_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def classify(exc: BaseException) -> tuple[str, str]:
    """(class, one-line message) for an exception raised while handling a source."""
    text = _ANSI.sub("", str(exc)).replace("\r", "")
    lines = [re.sub(r"^ERROR:\s*", "", line).strip() for line in text.splitlines()]
    message = next((line for line in lines if line), type(exc).__name__)
    if isinstance(exc, FileNotFoundError):
        return NOT_FOUND, message
    if isinstance(exc, SourceConfigError):
        return CONFIG, message
    from .video.probe import VideoError  # here: the video package must not import us

    if isinstance(exc, VideoError):
        return NOT_A_VIDEO, message
    for kind, pattern in _PATTERNS:
        if pattern.search(message):
            return kind, message
    return ERROR, message


def error_record(exc: BaseException, stage: str) -> dict[str, Any]:
    kind, message = classify(exc)
    return {"stage": stage, "class": kind, "message": message, "exception": type(exc).__name__,
            "traceback": traceback.format_exception(type(exc), exc, exc.__traceback__)[-3:]}
