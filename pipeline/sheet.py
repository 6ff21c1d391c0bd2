"""Contact sheets and the review page: how people look at a run, and how a review gets back in.

Two outputs under ``sheets/``, both rebuilt from the manifest alone (``python -m pipeline sheet``
needs nothing else, and a run rebuilds them as its last global step):

* ``<label>.jpg`` (``<label>-2.jpg`` ... when a label has more crops than one page holds): a grid
  of the label's kept crops in (source, time) order, a header and a caption under each tile, for
  showing a dataset to other people. With ``by="split"`` also ``splits/<split>.jpg``. Text is
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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Literal
from urllib.parse import parse_qs, quote, urlsplit

from .config import Config
from .dataset import DROPPED, KEPT, REJECTED, SPLITS
from .quality import reason_counts
from .state import (fingerprint, fresh_tmp_dir, read_json_object, replace_dir, write_atomic,
                    write_json)

__all__ = ["Header", "Layout", "SheetError", "SheetReport", "build_sheets", "format_time",
           "json_for_script", "layout_for", "page_data", "page_names", "read_manifest",
           "render_index", "render_sheet", "sheet_order", "short_ids", "source_link"]

VERSION = "2"  # bump when the drawing changes: cached sheets are then redrawn (2: dropped counts)
SHEETS_DIR = "sheets"
INDEX = "index.html"
BUILT = ".built.json"  # what the folder was built from (see build_sheets)
SPLIT_SHEETS_DIR = "splits"
# Large enough for any sane grid, small enough for every image viewer and for Pillow's own
# decompression-bomb guard (89 Mpx): a page is never one image too big to open.
MAX_SIDE = 16000
MAX_PIXELS = 40_000_000
JPEG_QUALITY = 90

By = Literal["label", "split"]


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
    from PIL import ImageFont

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
    from PIL import Image, ImageDraw, ImageOps

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
                draw.text((x, ty), _fit(draw, text, cap_font, layout.tile_w), font=cap_font, fill=(30, 30, 30))
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

def page_data(rows: list[dict[str, Any]], run: str, generated: str, decimals: int = 0) -> dict[str, Any]:
    """What the page shows, as plain JSON (the only way outside strings reach it)."""
    short = short_ids(r["source_id"] for r in rows)
    sources: dict[str, dict[str, Any]] = {}
    crops = []
    for r in sheet_order(rows):
        sid = r["source_id"]
        sources.setdefault(sid, {"id": sid, "short": short[sid], "title": r.get("title") or "",
                                 "uploader": r.get("uploader") or "", "url": r.get("source_url") or ""})
        t = float(r["t_s"])
        crops.append({"id": r["crop_id"], "img": "../" + quote(r["file"].replace("\\", "/")),
                      "label": r["label"], "split": r["split"], "source": sid, "t": t, "time": format_time(t, decimals),
                      "score": r.get("score"), "link": source_link(r.get("source_url"), t),
                      "status": r.get("status") or KEPT})
    labels = sorted({r["label"] for r in rows})
    splits = [s for s in SPLITS if any(r["split"] == s for r in rows)]
    return {"run": run, "generated": generated, "labels": labels, "splits": splits,
            "sources": list(sources.values()), "crops": crops}


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
                 decimals: int = 0) -> str:
    """The review page as one HTML string (static; thumbnails link to ``../crops/...``)."""
    data = page_data(rows, run, generated, decimals)
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
            f"{_BODY.replace('{run}', name).replace('{generated}', html.escape(generated))}\n"
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
    groups: dict[str, list[dict]] = {}
    for r in sheet_order(rows):
        groups.setdefault(r[key], []).append(r)
    return {g: [items[i:i + layout.per_page] for i in range(0, len(items), layout.per_page)]
            for g, items in groups.items()}


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
    if built.get("fingerprint") != fp or not (final / INDEX).is_file() or not all(p.is_file() for p in images):
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
    tmp = fresh_tmp_dir(final)
    report = SheetReport(final, final / INDEX, crops=sum(r["status"] != DROPPED for r in rows),
                         rejected=sum(r["status"] == REJECTED for r in rows),
                         dropped=sum(r["status"] == DROPPED for r in rows))
    jobs = [("label", "", False)] + ([("split", f"{SPLIT_SHEETS_DIR}/", True)] if by == "split" else [])
    for key, prefix, with_label in jobs:
        layout = layout_for(s.columns, s.thumb, s.max_per_label, 3 if with_label else 2)
        pages = _group_pages(kept, key, layout)
        names = page_names({g: len(p) for g, p in pages.items()}, prefix)
        rejected = {g: sum(r["status"] == REJECTED and r[key] == g for r in rows) for g in pages}
        dropped = {g: tuple(reason_counts(r.get("drop_reason") for r in rows
                                          if r["status"] == DROPPED and r[key] == g).items())
                   for g in pages}
        for group, group_pages in sorted(pages.items()):
            count = sum(len(p) for p in group_pages)
            for k, page_rows in enumerate(group_pages, 1):
                title = f"{group} split" if key == "split" else group
                header = Header(config.name, title, count, date, k, len(group_pages), rejected[group],
                                dropped[group])
                image = render_sheet(root, page_rows, header, layout, short, with_label, decimals)
                path = tmp / names[(group, k)]
                path.parent.mkdir(parents=True, exist_ok=True)
                image.save(path, "JPEG", quality=JPEG_QUALITY, subsampling=0, optimize=True)
                report.images.append(final / names[(group, k)])
    shown = [r for r in rows if r["status"] != DROPPED]  # the page reviews kept and rejected crops
    write_atomic(tmp / INDEX, render_index(shown, config.name, date, s.thumb, decimals))
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


# ----------------------------------------------------------------------------- page assets

_BODY = """<header>
  <div class="title"><h1>{run}</h1><span class="muted">crops review · built {generated}</span></div>
  <p id="counts" class="counts"></p>
  <form id="filters" class="filters">
    <label>Label <select id="f-label"><option value="">all</option></select></label>
    <label>Split <select id="f-split"><option value="">all</option></select></label>
    <label>Source <select id="f-source"><option value="">all</option></select></label>
    <label>Status <select id="f-status"><option value="">all</option><option value="kept">kept</option><option value="rejected">rejected</option></select></label>
    <label>Min score <input id="f-score" type="range" min="0" max="1" step="0.01" value="0"><output id="f-score-out">0.00</output></label>
    <label>Group by <select id="f-group"><option value="label">label</option><option value="split">split</option><option value="both">label and split</option></select></label>
  </form>
  <div class="review">
    <span id="review-state" class="muted"></span>
    <button id="save" type="button">Save rejects.txt</button>
  </div>
  <p class="help muted">Click a crop to reject it, click again to restore it (keys: arrows move, <kbd>x</kbd>
  rejects, <kbd>u</kbd> undoes). Save the list (served by <code>python -m pipeline review</code>, it is written
  into the output folder; from disk, put the downloaded file there as <code>rejects.txt</code>) and run again:
  rejected crops leave <code>dataset/</code>, nothing is recomputed.</p>
</header>
<main id="groups"></main>
<noscript><p>This page needs JavaScript to show the crops.</p></noscript>"""

_CSS = """
:root { --thumb: 128px; color-scheme: light; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.4 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #1d1d1f; background: #f6f6f7; }
header { position: sticky; top: 0; z-index: 2; background: #fff; border-bottom: 1px solid #ddd; padding: 10px 16px 6px; }
.title { display: flex; align-items: baseline; gap: 12px; flex-wrap: wrap; }
h1 { font-size: 20px; margin: 0; }
.muted { color: #6e6e73; }
.counts { margin: 4px 0; }
.filters { display: flex; flex-wrap: wrap; gap: 6px 16px; margin: 6px 0; }
.filters label { display: inline-flex; align-items: center; gap: 6px; }
.filters select { max-width: 16em; }
.filters output { font-variant-numeric: tabular-nums; min-width: 2.5em; }
.review { display: flex; align-items: center; gap: 12px; }
.help { font-size: 12px; margin: 4px 0 0; }
button#save { font: inherit; padding: 4px 12px; border-radius: 6px; border: 1px solid #b00020; background: #fff; color: #b00020; cursor: pointer; }
button#save.dirty { background: #b00020; color: #fff; }
main { padding: 8px 16px 40px; }
section { margin: 14px 0 8px; }
section h2 { font-size: 16px; margin: 0 0 8px; }
section h2 .muted { font-weight: normal; font-size: 13px; }
.grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(max(var(--thumb), 132px), 1fr)); gap: 10px; }
figure { margin: 0; background: #fff; border: 1px solid #e2e2e5; border-radius: 6px; padding: 6px; min-width: 0; }
figure button.thumb { display: block; position: relative; width: 100%; padding: 0; border: 0; background: #ececec; cursor: pointer; aspect-ratio: 1; border-radius: 3px; overflow: hidden; }
figure img { display: block; width: 100%; height: 100%; object-fit: contain; }
figure .badge { display: none; position: absolute; left: 0; right: 0; top: 50%; transform: translateY(-50%); background: rgba(176, 0, 32, .88); color: #fff; font-weight: 600; font-size: 12px; letter-spacing: .06em; text-transform: uppercase; padding: 2px 0; }
figure.rejected { border-color: #b00020; box-shadow: 0 0 0 2px #b00020; }
figure.rejected img { opacity: .35; filter: grayscale(1); }
figure.rejected .badge { display: block; }
figcaption { font-size: 12px; margin-top: 4px; line-height: 1.35; }
figcaption .src { font-weight: 600; white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
figcaption .meta { display: flex; justify-content: space-between; gap: 6px; color: #515154; font-variant-numeric: tabular-nums; }
figcaption a { color: #0a58ca; text-decoration: none; }
figcaption a:hover { text-decoration: underline; }
.empty { color: #6e6e73; padding: 20px 0; }
"""

_JS = r"""
"use strict";
(function () {
  const data = JSON.parse(document.getElementById("data").textContent);
  const byId = new Map(data.crops.map((c) => [c.id, c]));
  const sources = new Map(data.sources.map((s) => [s.id, s]));
  const initial = new Set(data.crops.filter((c) => c.status === "rejected").map((c) => c.id));
  const rejected = new Set(initial);
  const figures = new Map();

  // Decisions survive a reload: localStorage keeps, per run and by crop id, the crops whose
  // state differs from the manifest, as now ("now") and as last saved ("saved"). Ids that are
  // not on this page are ignored; entries the manifest has caught up with fall away on the next write.
  const storeKey = "pipeline-review:" + data.run;
  function diffFromManifest(set) {
    const out = {};
    for (const c of data.crops) if (set.has(c.id) !== (c.status === "rejected")) out[c.id] = set.has(c.id);
    return out;
  }
  function writeStore() {
    try {
      localStorage.setItem(storeKey, JSON.stringify({now: diffFromManifest(rejected), saved: diffFromManifest(initial)}));
    } catch (e) { /* storage disabled: the page works without it */ }
  }
  function applyStored(map, set) {
    for (const [id, rej] of Object.entries(map || {})) {
      if (!byId.has(id)) continue;
      if (rej) set.add(id); else set.delete(id);
    }
  }
  try {
    const stored = JSON.parse(localStorage.getItem(storeKey) || "{}") || {};
    applyStored(stored.now, rejected);
    applyStored(stored.saved, initial);
  } catch (e) { /* nothing stored, or unreadable: start from the manifest */ }
  const undo = [];  // crop ids, most recent change last
  let savedNote = "";
  const $ = (id) => document.getElementById(id);
  const el = (tag, cls, text) => {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  };
  const safeLink = (url) => (typeof url === "string" && /^(https?:|file:)/i.test(url) ? url : null);

  function fillSelect(select, values, labelOf) {
    for (const v of values) {
      const o = el("option", "", labelOf ? labelOf(v) : v);
      o.value = v;
      select.appendChild(o);
    }
  }
  fillSelect($("f-label"), data.labels);
  fillSelect($("f-split"), data.splits);
  fillSelect($("f-source"), data.sources.map((s) => s.id), (id) => {
    const s = sources.get(id);
    return s.title ? s.short + " · " + s.title : s.short;
  });

  function figureFor(c) {
    const s = sources.get(c.source) || {short: c.source, title: "", uploader: ""};
    const fig = el("figure");
    fig.dataset.id = c.id;
    const btn = el("button", "thumb");
    btn.type = "button";
    btn.title = c.id + " (click to reject or restore)";
    const img = el("img");
    img.loading = "lazy";
    img.decoding = "async";
    img.alt = c.id;
    img.src = c.img;
    btn.appendChild(img);
    btn.appendChild(el("span", "badge", "rejected"));
    btn.addEventListener("click", () => toggle(c.id));
    fig.appendChild(btn);
    const cap = el("figcaption");
    const src = el("div", "src", s.short);
    src.title = [s.title, s.uploader].filter(Boolean).join(" — ") || c.source;
    cap.appendChild(src);
    const meta = el("div", "meta");
    const href = safeLink(c.link);
    let when;
    if (href) {
      when = el("a", "", c.time + " ↗");
      when.href = href;
      when.target = "_blank";
      when.rel = "noopener noreferrer";
      when.title = "open the source at " + c.time;
    } else {
      when = el("span", "", c.time);
    }
    meta.appendChild(when);
    meta.appendChild(el("span", "score", c.score === null || c.score === undefined ? "" : Number(c.score).toFixed(2)));
    cap.appendChild(meta);
    const where = el("div", "muted", c.label + " · " + c.split);
    cap.appendChild(where);
    fig.appendChild(cap);
    fig.classList.toggle("rejected", rejected.has(c.id));
    btn.setAttribute("aria-pressed", rejected.has(c.id) ? "true" : "false");
    figures.set(c.id, fig);
    return fig;
  }

  function groupKey(c, how) {
    if (how === "split") return c.split;
    if (how === "both") return c.label + " · " + c.split;
    return c.label;
  }

  function render() {
    const how = $("f-group").value;
    const main = $("groups");
    main.replaceChildren();
    figures.clear();
    const groups = new Map();
    const order = how === "split" ? data.splits : data.labels;
    for (const c of data.crops) {
      const k = groupKey(c, how);
      if (!groups.has(k)) groups.set(k, []);
      groups.get(k).push(c);
    }
    const rank = (k) => {
      const head = how === "split" ? k : k.split(" · ")[0];
      const i = order.indexOf(head);
      return i < 0 ? 1e9 : i;
    };
    const keys = [...groups.keys()].sort((a, b) => rank(a) - rank(b) || (a < b ? -1 : a > b ? 1 : 0));
    for (const k of keys) {
      const sec = el("section");
      sec.dataset.group = k;
      const h = el("h2", "", k + " ");
      h.appendChild(el("span", "muted count"));
      sec.appendChild(h);
      const grid = el("div", "grid");
      for (const c of groups.get(k)) grid.appendChild(figureFor(c));
      sec.appendChild(grid);
      main.appendChild(sec);
    }
    applyFilters();
  }

  function visible(c) {
    const label = $("f-label").value, split = $("f-split").value, source = $("f-source").value;
    const status = $("f-status").value, min = Number($("f-score").value);
    if (label && c.label !== label) return false;
    if (split && c.split !== split) return false;
    if (source && c.source !== source) return false;
    if (status && (rejected.has(c.id) ? "rejected" : "kept") !== status) return false;
    if (min > 0 && !(Number(c.score) >= min)) return false;
    return true;
  }

  // Per section: how many of its crops the filters show, and how many of those are rejected.
  // A click only adjusts these counters, so a review stays instant with tens of thousands of crops.
  const sections = new Map();
  let shownTotal = 0;
  const labelTotals = new Map(), splitTotals = new Map();
  for (const c of data.crops) {
    labelTotals.set(c.label, (labelTotals.get(c.label) || 0) + 1);
    splitTotals.set(c.split, (splitTotals.get(c.split) || 0) + 1);
  }

  function writeSection(s) {
    s.el.hidden = s.n === 0;
    s.el.querySelector(".count").textContent = (s.n === s.total ? "(" + s.total : "(" + s.n + " of " + s.total) +
      (s.nRej ? ", " + s.nRej + " rejected)" : ")");
  }

  function applyFilters() {
    $("f-score-out").textContent = Number($("f-score").value).toFixed(2);
    shownTotal = 0;
    sections.clear();
    for (const sec of document.querySelectorAll("#groups section")) {
      const s = {el: sec, n: 0, total: 0, nRej: 0};
      for (const fig of sec.querySelectorAll("figure")) {
        const show = visible(byId.get(fig.dataset.id));
        fig.hidden = !show;
        s.total += 1;
        if (show) s.n += 1;
        if (show && rejected.has(fig.dataset.id)) s.nRej += 1;
      }
      shownTotal += s.n;
      sections.set(sec.dataset.group, s);
      writeSection(s);
    }
    updateCounts();
  }

  function updateCounts() {
    const total = data.crops.length;
    const nRej = rejected.size;
    const rejLabel = new Map(), rejSplit = new Map();
    for (const id of rejected) {
      const c = byId.get(id);
      rejLabel.set(c.label, (rejLabel.get(c.label) || 0) + 1);
      rejSplit.set(c.split, (rejSplit.get(c.split) || 0) + 1);
    }
    const perLabel = data.labels.map((l) => l + " " + (labelTotals.get(l) - (rejLabel.get(l) || 0))).join(", ");
    const perSplit = data.splits.map((s) => s + " " + (splitTotals.get(s) - (rejSplit.get(s) || 0))).join(" / ");
    $("counts").textContent = total + " crops · " + (total - nRej) + " kept (" + perLabel + "; " + perSplit + ") · " +
      nRej + " rejected · " + shownTotal + " shown";
    let added = 0, removed = 0;
    for (const id of rejected) if (!initial.has(id)) added += 1;
    for (const id of initial) if (!rejected.has(id)) removed += 1;
    const dirty = added + removed > 0;
    $("review-state").textContent = dirty ? "unsaved: " + added + " newly rejected, " + removed + " restored" :
      savedNote || (nRej ? nRej + " rejected in this run's manifest" : "no crop rejected");
    const save = $("save");
    save.textContent = "Save rejects.txt (" + nRej + ")";
    save.classList.toggle("dirty", dirty);
    document.body.dataset.dirty = dirty ? "1" : "";
  }

  // The clicked crop stays in view even when a status filter no longer matches it, so a
  // mistaken click can be undone where it happened; the filters apply again when changed.
  function toggle(id, record = true) {
    const now = !rejected.has(id);
    if (record) undo.push(id);
    if (now) rejected.add(id); else rejected.delete(id);
    const fig = figures.get(id);
    if (fig) {
      fig.classList.toggle("rejected", now);
      fig.querySelector("button.thumb").setAttribute("aria-pressed", now ? "true" : "false");
      const s = sections.get(fig.closest("section").dataset.group);
      if (s && !fig.hidden) {
        s.nRej += now ? 1 : -1;
        writeSection(s);
      }
    }
    savedNote = "";
    writeStore();
    updateCounts();
  }

  function markSaved(note) {
    initial.clear();
    for (const id of rejected) initial.add(id);
    savedNote = note;
    writeStore();
    updateCounts();
  }

  // Served by `python -m pipeline review`: the server writes rejects.txt into the output folder.
  // Opened from disk (or if the server is gone): the file is downloaded, as before.
  async function save() {
    const ids = data.crops.map((c) => c.id).filter((id) => rejected.has(id));
    const text = "# rejects.txt for run " + data.run + ", saved " + new Date().toISOString() + "\n" +
      "# Put this file in the run's output folder and run again. One crop id a line.\n" +
      ids.map((id) => id + "\n").join("");
    if (location.protocol === "http:") {
      try {
        const r = await fetch("/api/rejects", {method: "POST", body: text,
                                               headers: {"Content-Type": "text/plain; charset=utf-8"}});
        if (!r.ok) throw new Error(await r.text());
        const info = await r.json();
        markSaved("saved " + info.count + " crop id(s) to " + info.file + ": run the pipeline again to apply them");
        return;
      } catch (err) {
        savedNote = "";
        $("review-state").textContent = "the review server did not save (" + err.message + "); downloading instead";
      }
    }
    download(text);
    markSaved("");
  }

  function download(text) {
    const url = URL.createObjectURL(new Blob([text], {type: "text/plain"}));
    const a = el("a");
    a.href = url;
    a.download = "rejects.txt";
    document.body.appendChild(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 1000);
  }

  // Keyboard: arrows move between the crops shown, x rejects the current one and moves on,
  // u undoes the last change (click or key). Keys typed into the filters are left alone.
  function shown() { return [...document.querySelectorAll("#groups figure:not([hidden])")]; }
  function focusFigure(fig) {
    if (!fig) return;
    const btn = fig.querySelector("button.thumb");
    btn.focus({preventScroll: true});
    fig.scrollIntoView({block: "nearest"});
  }
  function columns(figs, i) {
    const top = figs[i].offsetTop, grid = figs[i].parentElement;
    return Math.max(1, figs.filter((f) => f.parentElement === grid && f.offsetTop === top).length);
  }
  const STEP = {ArrowLeft: -1, ArrowRight: 1};
  document.addEventListener("keydown", (e) => {
    if (e.altKey || e.ctrlKey || e.metaKey || (e.target.closest && e.target.closest("#filters"))) return;
    const figs = shown();
    const current = document.activeElement && document.activeElement.closest ?
      document.activeElement.closest("#groups figure") : null;
    const i = current ? figs.indexOf(current) : -1;
    if (e.key in STEP || e.key === "ArrowUp" || e.key === "ArrowDown") {
      if (!figs.length) return;
      e.preventDefault();
      if (i < 0) { focusFigure(figs[0]); return; }
      const step = e.key in STEP ? STEP[e.key] : (e.key === "ArrowUp" ? -1 : 1) * columns(figs, i);
      focusFigure(figs[Math.min(figs.length - 1, Math.max(0, i + step))]);
    } else if (e.key === "x" && i >= 0) {
      e.preventDefault();
      if (!rejected.has(current.dataset.id)) toggle(current.dataset.id);
      focusFigure(figs[Math.min(figs.length - 1, i + 1)]);
    } else if (e.key === "u" && undo.length) {
      e.preventDefault();
      const id = undo.pop();
      toggle(id, false);
      focusFigure(figures.get(id));
    }
  });

  for (const id of ["f-label", "f-split", "f-source", "f-status", "f-score"]) {
    $(id).addEventListener("input", applyFilters);
  }
  $("f-group").addEventListener("input", render);
  $("filters").addEventListener("submit", (e) => e.preventDefault());
  $("save").addEventListener("click", save);
  window.addEventListener("beforeunload", (e) => {
    if (document.body.dataset.dirty) { e.preventDefault(); e.returnValue = ""; }
  });
  render();
})();
"""

_ASSETS = hashlib.sha256((_BODY + _CSS + _JS).encode()).hexdigest()[:16]
