"""Passwords kept out of everything printed or written: a proxy URL (``http://user:secret@host``)
may be named in messages, logs, state files and config errors, its credentials never."""
from __future__ import annotations

import re

_CREDENTIALS = re.compile(r"(?<=://)[^/\s@'\"]+@")


def mask_credentials(text: str) -> str:
    """``text`` with the user and password of every URL in it replaced by ``***``."""
    return _CREDENTIALS.sub("***@", text)
