"""The evaluation as a terminal reads it: one small table each for detection (every crop, kept
crops), tracks and identity, a row a source and one overall."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def _cell(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.2f}"
    return str(v)


def table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    """Left-aligned first column, the others right-aligned, two spaces apart."""
    cells = [list(header), *([_cell(v) for v in r] for r in rows)]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    return ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths)))
            for r in cells]


def _named_rows(result: dict[str, Any], part: str) -> list[tuple[str, Any]]:
    rows = [(sid, s[part]) for sid, s in result["sources"].items()]
    if len(rows) > 1:
        rows.append(("overall", result["overall"][part]))
    return rows


def detection_rows(scores: dict[str, Any]) -> list[Any]:
    a, b = scores["iou_0.5"], scores["iou_0.3"]
    return [a["frames"], a["truth"], a["recall"], a["precision"], a["false_per_frame"], a["ap"],
            b["recall"], b["precision"], *(a["recall_by_size"][k]["recall"]
                                           for k in ("<32", "32-64", "64-128", ">128"))]


DETECTION_HEADER = ("frames", "truth", "recall", "precision", "false/frame", "AP",
                    "recall@.3", "precision@.3", "r<32", "r32-64", "r64-128", "r>128")
TRACK_HEADER = ("IDF1", "switches", "fragments", "tracks/identity", "identities", "MOTA")


def track_row(t: dict[str, Any]) -> list[Any]:
    return [t["idf1"], t["num_switches"], t["num_fragmentations"], t["tracks_per_identity"],
            t["num_unique_objects"], t["mota"]]


def lines(result: dict[str, Any]) -> list[str]:
    out: list[str] = []
    for part, title in (("every_crop", "detection, every crop (IoU 0.5 unless marked @.3):"),
                        ("kept", "detection, kept crops (what reaches dataset/):")):
        out += [title, *table(("source", *DETECTION_HEADER),
                              [(n, *detection_rows(s)) for n, s in _named_rows(result, part)]), ""]
    tracks = [(n, t) for n, t in _named_rows(result, "tracks") if t is not None]
    if tracks:
        out += ["tracks (IoU 0.5):", *table(("source", *TRACK_HEADER),
                                            [(n, *track_row(t)) for n, t in tracks]), ""]
    ident = result["overall"]["identity"]
    if ident is not None:
        b, p = ident["bcubed"], ident["pairwise"]
        out += ["identity clusters (crops that found a labelled person):",
                *table(("score", "precision", "recall", "F", "crops"),
                       [("BCubed", b["precision"], b["recall"], b["f"], b["items"]),
                        ("pairwise", p["precision"], p["recall"], p["f"], p["items"])]),
                f"{ident['identities']} labelled identities, {ident['clusters']} clusters; "
                f"{ident['unclustered']} matched crops have no cluster (dropped before the "
                "identity step, or too small to tell) and are not scored", ""]
    for t in result["unpaired_truth"]:
        out.append(f"warning: {t['file']} labels {t['key']}, no source of this run (not scored)")
    return out


SWEEP_HEADER = ("recall", "precision", "false/frame", "AP", "recall@.3", "kept recall", "IDF1",
                "tracks/identity", "ms/frame")


def sweep_lines(rows: Sequence[Any], start: str | None) -> list[str]:
    """One row a setting (``sweep.SweepRow``): overall scores of every crop at IoU 0.5 (recall
    also at 0.3 and of kept crops), tracks, and the ms a frame of the stages each setting redid."""
    def row(r: Any) -> list[Any]:
        o = r.result["overall"]
        a, b, k = o["every_crop"]["iou_0.5"], o["every_crop"]["iou_0.3"], o["kept"]["iou_0.5"]
        t = o["tracks"] or {}
        name = r.setting.name + (f" ({r.failed} source(s) failed)" if r.failed else "")
        return [name, a["recall"], a["precision"], a["false_per_frame"], a["ap"], b["recall"],
                k["recall"], t.get("idf1"), t.get("tracks_per_identity"), r.ms_per_frame]

    redone = f"each setting redid the stages from {start} on" if start else (
        "no setting changes a stage's work: nothing was redone")
    return [*table(("setting", *SWEEP_HEADER), [row(r) for r in rows]),
            f"({redone}; ms/frame: their time a sampled frame)"]
