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

import datetime as _dt
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from ..core.layout import SHEETS_PAGE, OutputLayout
from ..algo.quality import DROPPED, KEPT, reason_counts
from ..config.schema import Config
from ..io.files import building, read_json_object, replace_dir, write_atomic, write_json
from ..state.markers import fingerprint
from ..steps.rejects import REJECTED
from ..exec.cpus import available_cpus
from .draw import Header, Layout, layout_for, render_sheet
from .page import ASSETS, render_index
from .rows import SheetError, manifest_rows, page_names, sheet_order, short_ids, time_decimals


VERSION = "2"  # bump when the drawing changes: cached sheets are then redrawn (2: dropped counts)
INDEX = SHEETS_PAGE
BUILT = ".built.json"  # what the folder was built from (see build_sheets)
SPLIT_SHEETS_DIR = "splits"
PEOPLE_SHEETS_DIR = "people"
JPEG_QUALITY = 90

By = Literal["label", "split", "person"]
CLUSTER = "identity_cluster"  # the manifest column person sheets group by


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
    files: list[tuple[int, int] | None] = []
    for r in rows:
        if not r.get("file"):  # dropped by the crop stage: no file
            files.append(None)
            continue
        try:
            st = (root / r["file"]).stat()
            files.append((st.st_size, st.st_mtime_ns))
        except OSError:
            files.append(None)
    return fingerprint(VERSION, ASSETS, config.name, config.sheet.model_dump(), by, rows, files)


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
    rows = manifest_rows(root)
    final = OutputLayout(root).sheets_dir
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
                    image = render_sheet(root, page_rows, header, layout, short, with_label, decimals,
                                         available_cpus())
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
