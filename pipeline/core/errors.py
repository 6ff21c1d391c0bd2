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
from ..video.probe import VideoError

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


_CAUSES = {errno.ENOSPC: "the disk is full", errno.EDQUOT: "the disk quota is used up",
           errno.EROFS: "the file system is read-only", errno.EACCES: "permission denied",
           errno.EPERM: "permission denied",
           errno.EFBIG: "the file is larger than this process may write (ulimit -f)"}
"""Write failures that every further write would hit too: they stop a command, in one line."""
_ANYWHERE = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}
"""Of those, the ones a write reports without a file name (``write()`` on an open file): the
whole disk, or the whole process, is at its limit, so they are fatal wherever they happen."""


def os_error_line(exc: OSError) -> str:
    """An OSError as one line naming the path and the cause, e.g. ``/data/out/x.jpg: the disk
    is full (No space left on device)``."""
    cause = _CAUSES.get(exc.errno or 0)
    reason = f"{cause} ({exc.strerror})" if cause else (exc.strerror or str(exc))
    where = f"{exc.filename} -> {exc.filename2}" if exc.filename2 else exc.filename
    return f"{where}: {reason}" if where else reason


def unwritable_output(exc: BaseException, root: Path) -> OutputUnwritable | None:
    """An ``OutputUnwritable`` when ``exc`` is a write failure inside ``root``, else None."""
    if not isinstance(exc, OSError) or exc.errno not in _CAUSES:
        return None
    where = Path(str(exc.filename)) if exc.filename else None
    inside = where is not None and str(where.resolve()).startswith(str(Path(root).resolve()))
    if exc.errno not in _ANYWHERE and not inside:
        return None
    return OutputUnwritable(
        f"cannot write the output folder {root}: {os_error_line(exc)}; finished work is "
        "kept: free space, fix permissions or raise the limit, then run the same command again")

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
