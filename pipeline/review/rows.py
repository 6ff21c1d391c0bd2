"""The manifest's rows as the sheets and the review page show them: read, ordered, paged, with
short source ids, times and links back to the moment in the video."""
from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from ..algo.quality import KEPT


def read_manifest(root: Path) -> list[dict[str, Any]]:
    """The manifest rows with their JSON types (manifest.jsonl; the CSV would give strings)."""
    path = root / "manifest.jsonl"
    if not path.is_file():
        raise SheetError(f"no manifest at {path}: run the pipeline first")
    with open(path, encoding="utf-8") as f:
        rows = [json.loads(line) for line in f if line.strip()]
    for row in rows:
        if not row.get("status"):  # a manifest written before the review feature
            row["status"] = KEPT
    return rows


def format_time(t_s: float, decimals: int = 0) -> str:
    """``mm:ss`` (``h:mm:ss`` past an hour), floored like a player's clock; ``decimals`` digits
    of the second after a point (``00:01.4``) when frames are less than a second apart."""
    scale = 10 ** decimals
    ticks = max(0, int(math.floor(t_s * scale + 1e-6)))
    total, frac = divmod(ticks, scale)
    h, rest = divmod(total, 3600)
    m, s = divmod(rest, 60)
    tail = f".{frac:0{decimals}d}" if decimals else ""
    return f"{h}:{m:02d}:{s:02d}{tail}" if h else f"{m:02d}:{s:02d}{tail}"


def time_decimals(rows: Iterable[dict[str, Any]]) -> int:
    """1 when two crops of a source fall in the same second (sampling faster than 1 frame/s,
    where whole seconds would caption them alike), else 0."""
    seen: dict[tuple[str, int], float] = {}
    for r in rows:
        t = float(r["t_s"])
        key = (r["source_id"], int(math.floor(t + 1e-6)))
        if seen.setdefault(key, t) != t:
            return 1
    return 0


_FILE_SID = re.compile(r"^file-(.+)-([0-9a-f]{8})$")


def short_ids(source_ids: Iterable[str]) -> dict[str, str]:
    """A short caption name per source id that is still unique within the run.

    ``youtube-<id>`` gives the video id, ``file-<stem>-<hash>`` the stem, ``<site>-<id>`` the id.
    Two sources that would share a short name keep (a part of) their hash to tell them apart.
    """
    ids = sorted(set(source_ids))
    short: dict[str, str] = {}
    for sid in ids:
        m = _FILE_SID.match(sid)
        if m:
            short[sid] = m.group(1)
        elif sid.startswith("youtube-"):
            short[sid] = sid[len("youtube-"):]
        else:
            short[sid] = sid.split("-", 1)[1] if "-" in sid else sid
    seen: dict[str, int] = {}
    for name in short.values():
        seen[name] = seen.get(name, 0) + 1
    for sid in ids:
        if seen[short[sid]] > 1:
            m = _FILE_SID.match(sid)
            short[sid] = f"{short[sid]}~{m.group(2)[:4]}" if m else sid
    return short


def _youtube_id(url: str) -> str | None:
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if host == "youtu.be":
        return parts.path.strip("/") or None
    if host in ("youtube.com", "www.youtube.com", "m.youtube.com", "music.youtube.com"):
        if parts.path == "/watch":
            return (parse_qs(parts.query).get("v") or [None])[0]
        m = re.match(r"^/(?:shorts|live|embed)/([^/?#]+)", parts.path)
        return m.group(1) if m else None
    return None


def source_link(url: str | None, t_s: float) -> str | None:
    """Where to see the crop in its video: YouTube at that second, a local file at that time.

    Only http(s) and file URLs are ever linked, so a hostile ``javascript:`` URL from metadata
    never becomes a link.
    """
    if not url:
        return None
    second = max(0, int(math.floor(t_s + 1e-6)))
    vid = _youtube_id(url)
    if vid and re.fullmatch(r"[A-Za-z0-9_-]{6,20}", vid):
        return f"https://www.youtube.com/watch?v={vid}&t={second}s"
    scheme = urlsplit(url).scheme.lower()
    if scheme == "file":
        return f"{url.split('#', 1)[0]}#t={t_s:g}"  # media fragment: the browser's player seeks
    if scheme in ("http", "https"):
        return url
    return None


def page_names(pages: dict[str, int], prefix: str = "") -> dict[tuple[str, int], str]:
    """File name of every (group, page): ``<group>.jpg``, then ``<group>-2.jpg`` ...

    A label may itself look like another label's page (``hopper-2``); such a page takes
    ``<group>~<k>.jpg`` instead (``~`` cannot occur in a label), so no file is ever overwritten.
    """
    taken = {f"{prefix}{g}.jpg" for g in pages}
    names: dict[tuple[str, int], str] = {}
    for group in sorted(pages):
        names[(group, 1)] = f"{prefix}{group}.jpg"
        for k in range(2, pages[group] + 1):
            name = f"{prefix}{group}-{k}.jpg"
            if name in taken:
                name = f"{prefix}{group}~{k}.jpg"
            taken.add(name)
            names[(group, k)] = name
    return names


def sheet_order(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """(source, time) order, the crop id breaking ties: the same sheet on every rebuild."""
    return sorted(rows, key=lambda r: (r["source_id"], float(r["t_s"]), r["crop_id"]))


class SheetError(Exception):
    """Sheets cannot be built (no manifest yet)."""
