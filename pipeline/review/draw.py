"""Contact sheet images (Pillow): a grid of thumbnails with captions under a header, sized so any
image viewer opens it."""
from __future__ import annotations

import math
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw, ImageFont, ImageOps

from .rows import format_time


# Large enough for any sane grid, small enough for every image viewer and for Pillow's own
# decompression-bomb guard (89 Mpx): a page is never one image too big to open.
MAX_SIDE = 16000


MAX_PIXELS = 40_000_000


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


def thumbnails(root: Path, rows: list[dict[str, Any]], side: int, threads: int
               ) -> Iterator[Image.Image | None]:
    """Each row's crop fitted into ``side`` x ``side``, in order (None for a file gone or
    unreadable), ``threads`` crops at a time: Pillow decodes and resizes without holding the
    GIL, and loading is ~70% of drawing a sheet (0.37 of 0.52 CPU-s for 300 224-px crops)."""
    def load(row: dict[str, Any]) -> Image.Image | None:
        try:
            with Image.open(root / row["file"]) as im:
                return ImageOps.contain(im.convert("RGB"), (side, side))
        except OSError:
            return None

    with ThreadPoolExecutor(max(1, threads)) as pool:
        yield from pool.map(load, rows)


def render_sheet(root: Path, rows: list[dict[str, Any]], header: Header, layout: Layout,
                 short: dict[str, str], with_label: bool = False, decimals: int = 0, threads: int = 1):
    """One page as a PIL image: header, then a tile (thumbnail + caption) per row; thumbnails
    are read ``threads`` at a time."""
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
    thumbs = thumbnails(root, rows, layout.thumb, threads)
    for i, row in enumerate(rows):
        x, y = layout.tile_origin(i)
        cell = (x + (layout.tile_w - layout.thumb) // 2, y)
        draw.rectangle([cell, (cell[0] + layout.thumb - 1, y + layout.thumb - 1)], fill=(236, 236, 236))
        thumb = next(thumbs)
        if thumb is not None:
            sheet.paste(thumb, (cell[0] + (layout.thumb - thumb.width) // 2,
                                y + (layout.thumb - thumb.height) // 2))
        else:
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
