"""Contact sheets and the review page: how people look at a run, and how a review gets back in.

Two outputs under ``sheets/``, both rebuilt from the manifest alone (``python -m pipeline sheet``
needs nothing else, and a run rebuilds them as its last global step):

* ``<label>.jpg`` (``<label>-2.jpg`` ... when a label has more crops than one page holds): a grid
  of the label's kept crops in (source, time) order, a header and a caption under each tile, for
  showing a dataset to other people. With ``by="split"`` also ``splits/<split>.jpg``; with
  ``by="person"`` also ``people/<cluster>.jpg``, one per identity cluster, headed with the
  person's name (from ``identities.txt`` or a reference photo) and the cluster id. Text is
  drawn with the anti-aliased TrueType font that ships inside Pillow (>= 10.1), so sheets look
  the same on every machine, with no system font to find.
* ``index.html``: one static page (opens from disk, no server) with every crop, kept or rejected,
  filters, and the review loop: a click toggles a crop's rejection and a button downloads
  ``rejects.txt``; put it in the output folder and the next run leaves those crops out of
  ``dataset/`` without recomputing any stage.

Every string from outside (titles, uploaders, URLs) reaches the page only as JSON data inside a
``<script type="application/json">`` block and is shown with ``textContent``: the page never builds
HTML from data. A Content-Security-Policy that only allows the page's own script (by hash) backs
that up.
"""
from __future__ import annotations

import base64
import datetime as _dt
import hashlib
import html
import json
import math
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qs, quote, urlsplit

from PIL import Image, ImageDraw, ImageFont, ImageOps

from ..config.schema import Config
from ..steps.rejects import REJECTED
from ..steps.splits import SPLITS
from ..algo.quality import DROPPED, KEPT, reason_counts
from ..io.files import building, read_json_object, replace_dir, write_atomic, write_json
from ..state.markers import fingerprint

__all__ = ["Header", "Layout", "SheetError", "SheetReport", "build_sheets", "format_time",
           "json_for_script", "layout_for", "page_data", "page_names", "read_manifest",
           "render_index", "render_sheet", "sheet_order", "short_ids", "source_link"]

VERSION = "2"  # bump when the drawing changes: cached sheets are then redrawn (2: dropped counts)
SHEETS_DIR = "sheets"
INDEX = "index.html"
BUILT = ".built.json"  # what the folder was built from (see build_sheets)
SPLIT_SHEETS_DIR = "splits"
PEOPLE_SHEETS_DIR = "people"
# Large enough for any sane grid, small enough for every image viewer and for Pillow's own
# decompression-bomb guard (89 Mpx): a page is never one image too big to open.
MAX_SIDE = 16000
MAX_PIXELS = 40_000_000
JPEG_QUALITY = 90

By = Literal["label", "split", "person"]
CLUSTER = "identity_cluster"  # the manifest column person sheets group by


def _asset(name: str) -> str:
    """A file of the review page (``pipeline/review/assets/``): package data, so the page's
    HTML, CSS and JavaScript are edited as what they are, and shipped inside the wheel."""
    return (files(__package__) / "assets" / name).read_text(encoding="utf-8")


# The page's body (``{run}`` and ``{generated}`` filled in, escaped), style and script; the
# Content-Security-Policy allows exactly this style and script, by their sha256 (render_index).
_BODY, _CSS, _JS = _asset("page.html"), _asset("page.css"), _asset("page.js")
# Part of the sheets' cache key: a page built from other assets is rebuilt.
_ASSETS = hashlib.sha256((_BODY + _CSS + _JS).encode()).hexdigest()[:16]


class SheetError(Exception):
    """Sheets cannot be built (no manifest yet)."""


# ----------------------------------------------------------------------------- small pure parts

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


# ----------------------------------------------------------------------------- sheet images

@dataclass(frozen=True)
class Layout:
    """Pixel geometry of a sheet; every size derives from ``thumb`` so captions scale with tiles."""

    columns: int
    thumb: int
    per_page: int
    margin: int
    gap: int
    tile_w: int
    caption_h: int
    caption_px: int
    header_h: int
    title_px: int
    info_px: int

    @property
    def tile_h(self) -> int:
        return self.thumb + self.caption_h

    def size(self, n_tiles: int, min_width: int = 0) -> tuple[int, int]:
        """(width, height) of a page of ``n_tiles``: as many columns as needed, up to ``columns``."""
        cols = max(1, min(self.columns, n_tiles))
        rows = max(1, math.ceil(n_tiles / self.columns))
        width = 2 * self.margin + cols * self.tile_w + (cols - 1) * self.gap
        height = self.margin + self.header_h + rows * self.tile_h + (rows - 1) * self.gap + self.margin
        return max(width, min_width), height

    def tile_origin(self, i: int) -> tuple[int, int]:
        row, col = divmod(i, self.columns)
        return (self.margin + col * (self.tile_w + self.gap),
                self.margin + self.header_h + row * (self.tile_h + self.gap))


def layout_for(columns: int, thumb: int, max_per_label: int, caption_lines: int = 2) -> Layout:
    """The layout for the config's ``sheet`` section, capped so a page stays openable.

    Tiles are at least 112 px wide so a caption stays readable under small thumbnails; columns
    and rows shrink until the page fits ``MAX_SIDE`` and ``MAX_PIXELS``.
    """
    caption_px = max(11, min(18, round(thumb * 0.095)))
    caption_h = round(caption_px * 1.3) * caption_lines + 10
    tile_w = max(thumb, 112)
    margin, gap = 16, 8
    title_px = 24
    info_px = 14
    header_h = title_px + info_px + 30
    cols = max(1, min(columns, (MAX_SIDE - 2 * margin + gap) // (tile_w + gap)))
    width = 2 * margin + cols * tile_w + (cols - 1) * gap
    tile_h = thumb + caption_h
    max_rows_side = (MAX_SIDE - 2 * margin - header_h + gap) // (tile_h + gap)
    max_rows_px = (MAX_PIXELS // width - 2 * margin - header_h + gap) // (tile_h + gap)
    max_rows = max(1, min(max_rows_side, max_rows_px))
    per_page = max(1, min(max_per_label, cols * max_rows))
    return Layout(cols, thumb, per_page, margin, gap, tile_w, caption_h, caption_px, header_h,
                  title_px, info_px)


@dataclass(frozen=True)
class Header:
    """What the top of a sheet says."""

    run: str
    group: str  # the label (or split) the sheet shows
    count: int  # crops of the group (all pages)
    date: str
    page: int = 1
    pages: int = 1
    rejected: int = 0
    dropped: tuple[tuple[str, int], ...] = ()  # (reason, crops) left out by filters and dedupe


def _font(px: int):
    return ImageFont.load_default(size=px)  # Pillow >= 10.1: the bundled anti-aliased Aileron


def _fit(draw, text: str, font, width: int) -> str:
    """``text`` cut with an ellipsis so it fits ``width`` pixels."""
    if draw.textlength(text, font=font) <= width:
        return text
    while text and draw.textlength(text + "…", font=font) > width:
        text = text[:-1]
    return text + "…"


def header_lines(h: Header) -> tuple[str, str]:
    pages = f" · page {h.page} of {h.pages}" if h.pages > 1 else ""
    crops = f"{h.count} crop{'s' if h.count != 1 else ''}"
    rejected = f" ({h.rejected} rejected, not shown)" if h.rejected else ""
    n_dropped = sum(n for _, n in h.dropped)
    dropped = (f" · {n_dropped} dropped: " + ", ".join(f"{r.replace('_', ' ')} {n}" for r, n in h.dropped)
               if n_dropped else "")
    return f"{h.run} · {h.group}", f"{crops}{rejected}{dropped}{pages} · {h.date}"


def caption_lines(row: dict[str, Any], short: str, with_label: bool = False, decimals: int = 0
                  ) -> tuple[list[str], str, str]:
    """(text lines, time, score) under a tile: the source's short id, on split sheets the label
    first (a split mixes labels); time and score share the last line."""
    lines = [row["label"], short] if with_label else [short]
    score = row.get("score")
    return lines, format_time(float(row["t_s"]), decimals), "" if score is None else f"{float(score):.2f}"


def render_sheet(root: Path, rows: list[dict[str, Any]], header: Header, layout: Layout,
                 short: dict[str, str], with_label: bool = False, decimals: int = 0):
    """One page as a PIL image: header, then a tile (thumbnail + caption) per row."""
    title_font, info_font = _font(layout.title_px), _font(layout.info_px)
    cap_font = _font(layout.caption_px)
    title, info = header_lines(header)
    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    min_width = 2 * layout.margin + int(max(probe.textlength(title, font=title_font),
                                            probe.textlength(info, font=info_font))) + 1
    width, height = layout.size(len(rows), min(min_width, MAX_SIDE))
    sheet = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(sheet)
    inner = width - 2 * layout.margin
    draw.text((layout.margin, layout.margin), _fit(draw, title, title_font, inner),
              font=title_font, fill=(20, 20, 20))
    draw.text((layout.margin, layout.margin + layout.title_px + 8), _fit(draw, info, info_font, inner),
              font=info_font, fill=(90, 90, 90))
    rule_y = layout.margin + layout.header_h - 10
    draw.line([(layout.margin, rule_y), (width - layout.margin, rule_y)], fill=(210, 210, 210), width=1)
    line_h = round(layout.caption_px * 1.3)
    for i, row in enumerate(rows):
        x, y = layout.tile_origin(i)
        cell = (x + (layout.tile_w - layout.thumb) // 2, y)
        draw.rectangle([cell, (cell[0] + layout.thumb - 1, y + layout.thumb - 1)], fill=(236, 236, 236))
        try:
            with Image.open(root / row["file"]) as im:
                thumb = ImageOps.contain(im.convert("RGB"), (layout.thumb, layout.thumb))
            sheet.paste(thumb, (cell[0] + (layout.thumb - thumb.width) // 2,
                                y + (layout.thumb - thumb.height) // 2))
        except OSError:
            draw.text((cell[0] + 6, y + layout.thumb // 2 - layout.caption_px), "missing",
                      font=cap_font, fill=(160, 40, 40))
        lines, when, score = caption_lines(row, short.get(row["source_id"], row["source_id"]), with_label,
                                           decimals)
        ty = y + layout.thumb + 4
        if layout.tile_w == layout.thumb:  # text flush with the thumbnail's edges
            for text in lines:
                draw.text((x, ty), _fit(draw, text, cap_font, layout.tile_w), font=cap_font,
                          fill=(30, 30, 30))
                ty += line_h
            draw.text((x, ty), when, font=cap_font, fill=(90, 90, 90))
            if score:
                draw.text((x + layout.tile_w, ty), score, font=cap_font, fill=(90, 90, 90), anchor="ra")
        else:  # a small thumbnail centred in a wider tile: centred text lines up with it
            mid = x + layout.tile_w // 2
            for text in lines:
                draw.text((mid, ty), _fit(draw, text, cap_font, layout.tile_w), font=cap_font,
                          fill=(30, 30, 30), anchor="ma")
                ty += line_h
            draw.text((mid, ty), f"{when}   {score}" if score else when, font=cap_font,
                      fill=(90, 90, 90), anchor="ma")
    return sheet


# ----------------------------------------------------------------------------- the HTML page

def page_data(rows: list[dict[str, Any]], run: str, generated: str, decimals: int = 0,
              group: str = "label") -> dict[str, Any]:
    """What the page shows, as plain JSON (the only way outside strings reach it); ``group``:
    how it is grouped when opened (``cluster`` for ``sheet.by: person``)."""
    short = short_ids(r["source_id"] for r in rows)
    sources: dict[str, dict[str, Any]] = {}
    crops = []
    for r in sheet_order(rows):
        sid = r["source_id"]
        sources.setdefault(sid, {"id": sid, "short": short[sid], "title": r.get("title") or "",
                                 "uploader": r.get("uploader") or "", "url": r.get("source_url") or ""})
        t = float(r["t_s"])
        crops.append({"id": r["crop_id"], "img": "../" + quote(r["file"].replace("\\", "/")),
                      "label": r["label"], "split": r["split"], "source": sid, "t": t,
                      "time": format_time(t, decimals),
                      "score": r.get("score"), "link": source_link(r.get("source_url"), t),
                      "status": r.get("status") or KEPT,
                      "cluster": r.get("identity_cluster") or None,
                      "identity": r.get("identity") or None})
    labels = sorted({r["label"] for r in rows})
    splits = [s for s in SPLITS if any(r["split"] == s for r in rows)]
    return {"run": run, "generated": generated, "labels": labels, "splits": splits,
            "sources": list(sources.values()), "crops": crops,
            "clusters": any(c["cluster"] for c in crops), "group": group}


def json_for_script(data: Any) -> str:
    """JSON that cannot end or confuse the ``<script>`` block holding it.

    Escaping every ``<``, ``>`` and ``&`` as ``\\u003c``... (valid JSON, parsed back unchanged) is a
    superset of escaping ``</``: it also defuses ``<!--`` and ``<script`` inside a title, which would
    otherwise put the HTML tokenizer in a state where the block's real end tag is not seen.
    """
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return (text.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e")
            .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))


def _csp_hash(text: str) -> str:
    return "sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()


def render_index(rows: list[dict[str, Any]], run: str, generated: str, thumb: int = 128,
                 decimals: int = 0, group: str = "label") -> str:
    """The review page as one HTML string (static; thumbnails link to ``../crops/...``)."""
    data = page_data(rows, run, generated, decimals, group)
    css = _CSS.replace("--thumb: 128px", f"--thumb: {int(thumb)}px")
    csp = ("default-src 'none'; img-src 'self' file: http: https: data:; connect-src 'self'; "
           f"style-src '{_csp_hash(css)}'; script-src '{_csp_hash(_JS)}'; "
           "base-uri 'none'; form-action 'none'")
    name = html.escape(run)
    return (f"<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            f"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
            f"<meta http-equiv=\"Content-Security-Policy\" content=\"{html.escape(csp)}\">\n"
            f"<meta name=\"referrer\" content=\"no-referrer\">\n"
            f"<title>{name} · crops review</title>\n<style>{css}</style>\n</head>\n<body>\n"
            f"{_BODY.replace('{run}', name).replace('{generated}', html.escape(generated))}"
            f"<script type=\"application/json\" id=\"data\">{json_for_script(data)}</script>\n"
            f"<script>{_JS}</script>\n</body>\n</html>\n")


# ----------------------------------------------------------------------------- the global step

@dataclass
class SheetReport:
    """What ``build_sheets`` wrote: the folder, the page, every sheet image; crop counts."""

    dir: Path
    index: Path
    images: list[Path] = field(default_factory=list)
    crops: int = 0
    rejected: int = 0
    cached: bool = False  # the folder was already built from the same inputs
    dropped: int = 0  # left out by quality filters, selection and dedupe (not on the page)


def _group_pages(rows: list[dict[str, Any]], key: str, layout: Layout) -> dict[str, list[list[dict]]]:
    """Pages of each value of ``key`` (rows without one, e.g. crops never embedded, have none)."""
    groups: dict[str, list[dict]] = {}
    for r in sheet_order(rows):
        if r.get(key):
            groups.setdefault(r[key], []).append(r)
    return {g: [items[i:i + layout.per_page] for i in range(0, len(items), layout.per_page)]
            for g, items in groups.items()}


def person_title(cluster: str, rows: list[dict[str, Any]]) -> str:
    """A person sheet's title: the name most of the cluster's crops carry, and the cluster id."""
    names = Counter(r["identity"] for r in rows if r.get("identity"))
    name = min(names, key=lambda n: (-names[n], n)) if names else None
    return f"{name} · cluster {cluster}" if name else f"cluster {cluster}"


def _title(key: str, group: str, rows: list[dict[str, Any]]) -> str:
    if key == "split":
        return f"{group} split"
    return person_title(group, rows) if key == CLUSTER else group


def _inputs_fingerprint(config: Config, root: Path, rows: list[dict[str, Any]], by: str) -> str:
    """Everything the sheets depend on: rows, crop files (size, mtime), settings, this code."""
    files = []
    for r in rows:
        if not r.get("file"):  # dropped by the crop stage: no file
            files.append(None)
            continue
        try:
            st = (root / r["file"]).stat()
            files.append((st.st_size, st.st_mtime_ns))
        except OSError:
            files.append(None)
    return fingerprint(VERSION, _ASSETS, config.name, config.sheet.model_dump(), by, rows, files)


def _cached(final: Path, fp: str) -> SheetReport | None:
    built = read_json_object(final / BUILT)
    if built is None or not isinstance(built.get("images", []), list):
        return None
    images = [final / str(name) for name in built.get("images", [])]
    if (built.get("fingerprint") != fp or not (final / INDEX).is_file()
            or not all(p.is_file() for p in images)):
        return None
    return SheetReport(final, final / INDEX, images, built.get("crops", 0), built.get("rejected", 0),
                       cached=True, dropped=built.get("dropped", 0))


def build_sheets(config: Config, root: Path | None = None, by: By = "label",
                 today: str | None = None, force: bool = False) -> SheetReport:
    """Rebuild ``sheets/`` from the manifest: a JPEG per label (and split) page, and index.html.

    The folder is written aside and swapped in whole, so pages of a label that shrank do not
    linger and a reader never sees half a rebuild. Sheets show kept crops; the page shows all.
    Drawing takes ~2 ms a crop, so unless ``force``, a folder built from the very same inputs
    is kept as it is (a rerun with nothing new does not redraw 10 000 thumbnails).
    """
    root = Path(root if root is not None else config.output_dir)
    rows = read_manifest(root)
    final = root / SHEETS_DIR
    fp = _inputs_fingerprint(config, root, rows, by)
    if not force and (cached := _cached(final, fp)) is not None:
        return cached
    date = today or _dt.date.today().isoformat()
    s = config.sheet
    kept = [r for r in rows if r["status"] == KEPT]
    short = short_ids(r["source_id"] for r in rows)
    decimals = time_decimals(rows)
    with building(final) as tmp:  # removed again if the rebuild fails (a full disk)
        report = SheetReport(final, final / INDEX, crops=sum(r["status"] != DROPPED for r in rows),
                             rejected=sum(r["status"] == REJECTED for r in rows),
                             dropped=sum(r["status"] == DROPPED for r in rows))
        # no identity column at all (a run with identity but no kept crop gets no person sheet)
        if by == "person" and not any(CLUSTER in r for r in rows):
            raise SheetError("no identity clusters in the manifest: person sheets need an identity "
                             "section in the config and a run")
        extra = {"split": ("split", f"{SPLIT_SHEETS_DIR}/", True),
                 "person": (CLUSTER, f"{PEOPLE_SHEETS_DIR}/", True)}
        jobs = [("label", "", False)] + ([extra[by]] if by in extra else [])
        for key, prefix, with_label in jobs:
            layout = layout_for(s.columns, s.thumb, s.max_per_label, 3 if with_label else 2)
            pages = _group_pages(kept, key, layout)
            names = page_names({g: len(p) for g, p in pages.items()}, prefix)
            rejected = {g: sum(r["status"] == REJECTED and r.get(key) == g for r in rows) for g in pages}
            dropped = {g: tuple(reason_counts(r.get("drop_reason") for r in rows
                                              if r["status"] == DROPPED and r.get(key) == g).items())
                       for g in pages}
            for group, group_pages in sorted(pages.items()):
                count = sum(len(p) for p in group_pages)
                for k, page_rows in enumerate(group_pages, 1):
                    title = _title(key, group, [r for p in group_pages for r in p])
                    header = Header(config.name, title, count, date, k, len(group_pages), rejected[group],
                                    dropped[group])
                    image = render_sheet(root, page_rows, header, layout, short, with_label, decimals)
                    path = tmp / names[(group, k)]
                    path.parent.mkdir(parents=True, exist_ok=True)
                    image.save(path, "JPEG", quality=JPEG_QUALITY, subsampling=0, optimize=True)
                    image.close()  # a page is up to ~25 MB of pixels: never two in memory at once
                    report.images.append(final / names[(group, k)])
        shown = [r for r in rows if r["status"] != DROPPED]  # the page reviews kept and rejected crops
        write_atomic(tmp / INDEX, render_index(shown, config.name, date, s.thumb, decimals,
                                               "cluster" if by == "person" else "label"))
        write_json(tmp / BUILT, {"fingerprint": fp, "date": date, "crops": report.crops,
                                 "dropped": report.dropped,
                                 "rejected": report.rejected,
                                 "images": [str(p.relative_to(final)) for p in report.images]})
        replace_dir(tmp, final, ours_in_sheets)
    return report


def ours_in_sheets(rel: str, path: Path) -> bool:
    """Whether a file of an old ``sheets/`` folder was written by ``build_sheets``: the page,
    its build record, and the images that record lists. Anything else is a user's file and
    survives the rebuild."""
    built = read_json_object(path.parents[rel.count("/")] / BUILT) or {}
    images = built.get("images")
    return rel in (INDEX, BUILT) or (isinstance(images, list) and rel in images)
