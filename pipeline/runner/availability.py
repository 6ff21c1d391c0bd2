"""The availability report: every listed video and what became of it, and what changed since
the run before.

Each video is ``done`` (through every stage), ``filtered`` (the entry's filter left it out,
saying which conditions), ``unavailable`` (private, removed, geo, age, members-only),
``blocked`` (a bot check or rate limit: cookies or a slower pace may get it), ``failed`` (any
other recorded failure: the stage and the class of its error marker, whatever class that is)
or ``pending`` (not tried yet, or not finished). Every finished run writes it as
``availability.csv`` and keeps its states in ``state/availability.json`` (the one before goes to
``state/availability.previous.json``), so the next report can say what changed: newly
unavailable, newly done, new in the listing, gone from it.
"""
from __future__ import annotations

import csv
import io
import re
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

from ..config.schema import Config
from ..core.records import Video, file_url
from ..io.cells import spreadsheet_safe
from ..io.files import read_json_object, write_atomic, write_json
from ..sources.expand import Expansion, expand_sources
from ..stages import FIRST
from ..core.layout import AVAILABILITY, AVAILABILITY_CSV, OutputLayout
from ..state.markers import State
from .status import StatusReport, offline_expander, status
from .unit import SourceOutcome

CSV_NAME = AVAILABILITY_CSV
LATEST, PREVIOUS = AVAILABILITY
STATES = ("done", "filtered", "unavailable", "blocked", "failed", "pending", "gone")

_DETAILS: list[tuple[str, re.Pattern[str]]] = [
    ("private", re.compile(r"private video|granted access", re.I)),
    ("members-only", re.compile(r"members.only|join this channel", re.I)),
    ("geo", re.compile(r"geo.?restrict|in your country|from your location", re.I)),
    ("age", re.compile(r"confirm your age|age.?restrict|inappropriate for some users", re.I)),
    ("removed", re.compile(r"removed|terminated|no longer available|deleted|does not exist|"
                           r"HTTP Error 40[14]|HTTP Error 410", re.I)),
    ("bot-check", re.compile(r"not a bot|captcha", re.I)),
    ("rate-limited", re.compile(r"HTTP Error 429|too many requests|rate.?limit", re.I)),
]
"""What a failure's message says of why the video cannot be had, in the words sites use
(YouTube's: "Private video. Sign in if you've been granted access", "Sign in to confirm your
age", "The uploader has not made this video available in your country", ...)."""
_UNAVAILABLE = {"private", "members-only", "geo", "age", "removed"}
_BLOCKED = {"bot-check", "rate-limited"}


@dataclass(frozen=True)
class Fate:
    """What the markers (or a run's outcome) say of one video."""

    done: bool
    stage: str | None = None  # the stage that failed
    error_class: str | None = None
    message: str | None = None


@dataclass(frozen=True)
class Row:
    """One line of the report (and of ``availability.csv``, in this column order)."""

    source_id: str
    entry: str  # sources.N: which config entry listed it
    url: str
    title: str
    state: str
    reason: str = ""
    change: str = ""
    message: str = ""


COLUMNS = tuple(f.name for f in fields(Row))


def judge(fate: Fate | None) -> tuple[str, str]:
    """(state, reason) of a video from its fate; a failure's class is read as recorded, so a
    class this module does not know still shows (``failed``, ``download: <class>``)."""
    if fate is None:
        return "pending", ""
    if fate.done:
        return "done", ""
    if fate.stage is None:
        return "pending", ""
    text = fate.message or ""
    detail = next((name for name, pattern in _DETAILS if pattern.search(text)), None)
    if detail in _UNAVAILABLE:
        return "unavailable", detail or ""
    if fate.error_class == "blocked" or detail in _BLOCKED:
        return "blocked", detail or "blocked"
    if fate.error_class in ("unavailable", "restricted"):
        return "unavailable", fate.error_class
    return "failed", f"{fate.stage}: {fate.error_class or 'error'}"


def rows_of(config: Config, expansion: Expansion, fates: dict[str, Fate],
            unlisted: Iterable[tuple[str, int]] = ()) -> list[Row]:
    """Every listed video in config order (its entry's listing order), the filtered ones after
    the taken ones of their entry; an entry that could not be listed is one row of its own, and
    so is one not listed yet (``unlisted``: source id and entry index, pending). A local file's
    ``url`` is its ``file://`` URL, as the manifest's ``source_url``: a carriage return, a tab or
    a byte that is not UTF-8 in its name is spelled out (``%0D``), never turned into another."""
    ordered: list[tuple[int, int, Row]] = []
    for n, video in enumerate(expansion.videos):
        fate = fates.get(video.sid)
        state, reason = judge(fate)
        ordered.append((video.spec_index, n, Row(
            video.sid, f"sources.{video.spec_index}", video.url, video.title or "", state,
            reason, message=(fate.message or "") if fate and not fate.done else "")))
    for n, f in enumerate(expansion.filtered):
        ordered.append((f.video.spec_index, len(expansion.videos) + n, Row(
            f.video.sid, f"sources.{f.video.spec_index}", f.video.url, f.video.title or "",
            "filtered", f.reason)))
    for failure in expansion.failures:
        spec = config.sources[failure.entry]
        state, reason = judge(Fate(False, FIRST, failure.kind, failure.message))  # as status counts it
        ordered.append((failure.entry, -1, Row(failure.sid, f"sources.{failure.entry}",
                                               spec.url or file_url(spec.path or ""), "", state, reason,
                                               message=failure.message)))
    for sid, index in unlisted:
        ordered.append((index, -1, Row(sid, f"sources.{index}", config.sources[index].url or "",
                                       "", "pending", "not listed yet")))
    return [row for _, _, row in sorted(ordered, key=lambda t: (t[0], t[1]))]


def compare(rows: list[Row], before: dict[str, dict[str, Any]] | None) -> list[Row]:
    """``rows`` with their ``change`` since ``before`` (a snapshot), and a ``gone`` row for each
    video ``before`` listed that is not listed now. No snapshot: nothing to compare, no change."""
    if before is None:
        return rows
    out = []
    for row in rows:
        old = before.get(row.source_id)
        if old is None:
            change = "new"
        elif (old.get("state"), old.get("reason", "")) == (row.state, row.reason):
            change = ""
        else:
            change = "was " + _state_text(old.get("state"), old.get("reason", ""))
        out.append(replace(row, change=change))
    listed = {row.source_id for row in rows}
    for sid, old in before.items():
        if sid not in listed:
            out.append(Row(sid, str(old.get("entry", "")), str(old.get("url", "")),
                           str(old.get("title", "")), "gone", "not listed any more",
                           "was " + _state_text(old.get("state"), old.get("reason", ""))))
    return out


def _state_text(state: Any, reason: Any) -> str:
    return f"{state}: {reason}" if reason else str(state)


def counts(rows: Iterable[Row]) -> str:
    """``3 done, 1 filtered, 2 unavailable`` (states in a fixed order, those present)."""
    n = Counter(row.state for row in rows)
    return ", ".join(f"{n[s]} {s}" for s in STATES if n[s]) or "no videos"


UNSETTLED = ("unavailable", "blocked", "failed")
"""The states a run could not get a video past: ``report`` exits 1 when a video is in one, as
``run`` does when a source failed."""


def exit_code(rows: Iterable[Row]) -> int:
    """1 when a video is unavailable, blocked or failed, else 0: done, filtered (the config's
    choice), pending (not tried yet: a folder with nothing run yet is no failure) and gone."""
    return 1 if any(row.state in UNSETTLED for row in rows) else 0


def changes(rows: Iterable[Row]) -> str:
    """``1 newly done, 2 newly unavailable, 1 new in the listing, 1 gone from it``; empty when
    nothing changed."""
    n: Counter[str] = Counter()
    for row in rows:
        if row.state == "gone":
            n["gone from the listing"] += 1
        elif row.change == "new":
            n["new in the listing"] += 1
        elif row.change:
            n[f"newly {row.state}"] += 1
    return ", ".join(f"{v} {k}" for k, v in n.items())


def csv_text(rows: Iterable[Row]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows({k: spreadsheet_safe(v) for k, v in asdict(row).items()} for row in rows)
    return buffer.getvalue()


def table(rows: list[Row]) -> list[str]:
    """The report as aligned lines: source id, state, change, why (last: it can be long)."""
    sid_width = max([len(r.source_id) for r in rows] + [9])
    change_width = max([len(r.change) for r in rows] + [6])
    lines = [f"{'source_id':<{sid_width}}  {'state':<11}  {'change':<{change_width}}  why"]
    for r in rows:
        lines.append(f"{r.source_id:<{sid_width}}  {r.state:<11}  {r.change:<{change_width}}  "
                     f"{r.reason}".rstrip())
    return lines


def snapshot(rows: Iterable[Row]) -> dict[str, Any]:
    return {"written": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "videos": {r.source_id: {"entry": r.entry, "url": r.url, "title": r.title,
                                     "state": r.state, "reason": r.reason}
                       for r in rows if r.state != "gone"}}


def load_snapshot(path: Path) -> dict[str, dict[str, Any]] | None:
    """The videos of a snapshot; None when there is none (or it is damaged: no comparison)."""
    videos = (read_json_object(path) or {}).get("videos")
    if not isinstance(videos, dict) or not all(isinstance(v, dict) for v in videos.values()):
        return None
    return videos


def record_run(config: Config, root: Path, expansion: Expansion, fates: dict[str, Fate]) -> list[Row]:
    """At the end of a run: compare with the run before, write ``availability.csv``, and keep
    this run's states for the next one. A listed video the run did not take (``--limit``) is
    as its markers say, so a trial run does not undo what an earlier run finished."""
    untaken = [v for v in expansion.videos if v.sid not in fates]
    if untaken:
        fates = {**marker_fates(status(config), untaken), **fates}
    state_dir = OutputLayout(root).state_dir
    latest = load_snapshot(state_dir / LATEST)
    rows = compare(rows_of(config, expansion, fates), latest)
    write_atomic(root / CSV_NAME, csv_text(rows))
    if latest is not None:
        write_json(state_dir / PREVIOUS, read_json_object(state_dir / LATEST))
    write_json(state_dir / LATEST, snapshot(rows))
    return rows


def report(config: Config) -> list[Row]:
    """The report now, from the markers and saved listings alone (no network), compared with
    the run before the last finished one: right after a run, what that run changed."""
    root = config.output_dir
    listed = expand_sources(config, State(root), expander=offline_expander)
    current = status(config)  # the run's own rules for done, failed, pending; listing failures
    failed = {f.sid for f in current.failures}
    unlisted = [(f.sid, f.entry) for f in listed.failures if f.sid not in failed]
    expansion = Expansion(listed.videos, current.failures, listed.filtered)
    return compare(rows_of(config, expansion, marker_fates(current, listed.videos), unlisted),
                   load_snapshot(OutputLayout(root).state_dir / PREVIOUS))


def marker_fates(current: StatusReport, videos: Iterable[Video]) -> dict[str, Fate]:
    """The fate of each video from ``status``: its first
    failed stage, else done when every stage is."""
    fates: dict[str, Fate] = {}
    stages = list(current.stages.items())
    for video in videos:
        failed = next(((stage, f) for stage, groups in stages for f in groups["failed"]
                       if f[0] == video.sid), None)
        if failed is not None:
            stage, (_, kind, message) = failed
            fates[video.sid] = Fate(False, stage, kind, message)
        else:
            fates[video.sid] = Fate(all(video.sid in groups["done"] for _, groups in stages))
    return fates


def fates_of(outcomes: Iterable[SourceOutcome]) -> dict[str, Fate]:
    """What the report needs of each outcome of a run."""
    return {o.sid: Fate(o.ok, o.failed_stage, o.error_class, o.message) for o in outcomes}
