"""The review page (``sheets/index.html``): its HTML, CSS and JavaScript (``assets/``) with the
run's rows as JSON, under a Content-Security-Policy that allows exactly those."""
from __future__ import annotations

import base64
import hashlib
import html
import json
from importlib.resources import files
from typing import Any
from urllib.parse import quote

from ..algo.quality import KEPT
from ..steps.splits import SPLITS
from .rows import format_time, sheet_order, short_ids, source_link


def _asset(name: str) -> str:
    """A file of the review page (``pipeline/review/assets/``): package data, so the page's
    HTML, CSS and JavaScript are edited as what they are, and shipped inside the wheel."""
    return (files(__package__) / "assets" / name).read_text(encoding="utf-8")


# The page's body (``{run}`` and ``{generated}`` filled in, escaped), style and script; the
# Content-Security-Policy allows exactly this style and script, by their sha256 (render_index).
_BODY, _CSS, _JS = _asset("page.html"), _asset("page.css"), _asset("page.js")


# Part of the sheets' cache key: a page built from other assets is rebuilt.
ASSETS = hashlib.sha256((_BODY + _CSS + _JS).encode()).hexdigest()[:16]


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
