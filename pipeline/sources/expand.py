"""Turn the config's ``sources`` entries into videos with stable, file-name-safe ids.

A playlist, channel or search URL expands into its videos; a folder into its video files. The
expansion of a URL is cached under ``state/sources/`` so a resumed run does not ask the site again
(and a search that would return other results today does not change a dataset half built).
"""
from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from ..config.fields import no_such_path
from ..config.schema import Config
from ..config.sources import Source
from ..core.records import Video
from ..core.layout import OutputLayout
from ..io.files import read_json_object, write_json
from ..state.markers import State
from .ids import file_source_id, short_hash
from .ytdlp import expand_url, printable
from ..core.errors import classify
from ..core.filters import VideoFilter, decide
from .blocked import gated

VIDEO_EXTENSIONS = frozenset({".mp4", ".m4v", ".mkv", ".webm", ".mov", ".avi", ".mpg", ".mpeg",
                              ".ts", ".mts", ".m2ts", ".flv", ".wmv", ".3gp", ".ogv", ".264",
                              ".h264", ".hevc", ".265"})


class SourceFailure(NamedTuple):
    """A ``sources`` entry that could not be expanded into videos, and why."""

    sid: str  # the id its failure is recorded under (``state/download/<sid>.error.json``)
    entry: int  # its position in ``sources``
    kind: str  # the failure class (``pipeline.core.errors``)
    message: str


@dataclass(frozen=True)
class Filtered:
    """A listed video the entry's filter left out, and why (``pipeline.core.filters``)."""

    video: Video
    reason: str


@dataclass
class Expansion:
    """The videos of all entries, the entries that could not be expanded (with why), and the
    listed videos a filter left out."""

    videos: list[Video] = field(default_factory=list)
    failures: list[SourceFailure] = field(default_factory=list)
    filtered: list[Filtered] = field(default_factory=list)

    def locations(self, config: Config) -> dict[str, str]:
        """Each source id's URL or path: the videos', and the listed entries' that failed."""
        where = {v.sid: v.location for v in self.videos}
        where.update({sid: config.sources[i].url or config.sources[i].path or ""
                      for sid, i, _, _ in self.failures})
        return where


def _is_output(folder: Path, output: Path) -> bool:
    """An output folder of this tool (ours, or another config's): never listed as sources."""
    return OutputLayout(folder).run_marker.is_file() or folder.resolve() == output


def _list_folder(folder: Path, output: Path) -> list[Path]:
    found = []
    for here, dirs, files in os.walk(folder):
        dirs[:] = [d for d in dirs if not _is_output(Path(here, d), output)]
        found += [Path(here, f) for f in files if Path(f).suffix.lower() in VIDEO_EXTENSIONS
                  and not f.startswith(".") and Path(here, f).is_file()]
    return sorted(found)


def _path_videos(spec: Source, path: Path, index: int, output: Path) -> list[Video]:
    """The videos of ``spec``'s ``path`` (a file, or a folder searched for videos)."""
    if not path.exists():
        raise FileNotFoundError(no_such_path(path))
    files = _list_folder(path, output) if path.is_dir() else [path]
    if path.is_dir() and not files:
        raise FileNotFoundError(f"no video files in folder {path} "
                                f"(looked for {', '.join(sorted(VIDEO_EXTENSIONS))})")
    return [Video(file_source_id(f), "file", str(f.resolve()), index, spec.label,
                  tuple(spec.segments), printable(f.stem)) for f in files]


def local_source_problems(config: Config) -> list[str]:
    """``sources.N.path: ...`` for each local source a run would fail (``not-found``): a path
    that is not there, or a folder with no videos. A run fails those sources and does the
    others, so ``validate`` warns about them rather than refusing the config."""
    output = config.output_dir.resolve()
    problems = []
    for index, spec in enumerate(config.sources):
        if spec.path is None:
            continue
        try:
            _path_videos(spec, Path(spec.path), index, output)
        except FileNotFoundError as exc:
            problems.append(f"sources.{index}.path: {exc}")
    return problems


"""Extractors whose ids come from file or page names, so they repeat across sites."""


"""yt-dlp options that make a listing only a listing, over the config's own."""


Expander = Callable[[str, dict, VideoFilter | None], list[dict[str, str]]]


def expand_sources(config: Config, state: State, expander: Expander | None = None,
                   refresh: bool = False) -> Expansion:
    """All videos of the config in order; the same video twice is kept once. Videos an entry's
    filter leaves out go to ``Expansion.filtered`` (a video another entry takes is not there).

    ``expander`` lists a URL; by default ``expand_url`` through the host's gate
    (``pipeline.sources.blocked``: a bot check or HTTP 429 pauses, rotates proxies or stops the host).

    Which entry's label and segments it takes: the most specific path entry (a file over a
    folder holding it, a subfolder over its parent, whatever their order), else the first entry.
    """
    if expander is None:
        expander = gated(expand_url, state.dir, config.download)
    out = Expansion()
    position: dict[str, int] = {}
    ytdlp_options = _expansion_options(config)
    output = config.output_dir.resolve()
    for index, spec in enumerate(config.sources):
        try:
            if spec.path is not None:
                videos = _path_videos(spec, Path(spec.path), index, output)
            else:
                videos, filtered = _cached_url_videos(config, index, state, expander, ytdlp_options,
                                                      refresh)
                out.filtered += filtered
        except Exception as exc:  # one bad entry must not stop the others
            sid = (file_source_id(Path(spec.path)) if spec.path is not None
                   else f"url-{short_hash(spec.url or '')}")
            kind, message = classify(exc)
            out.failures.append(SourceFailure(sid, index, kind, message))
            continue
        for v in videos:
            if v.sid not in position:
                position[v.sid] = len(out.videos)
                out.videos.append(v)
            elif _specificity(config, v) > _specificity(config, out.videos[position[v.sid]]):
                out.videos[position[v.sid]] = v
    left_out: dict[str, Filtered] = {}
    for f in out.filtered:
        if f.video.sid not in position:
            left_out.setdefault(f.video.sid, f)
    out.filtered = list(left_out.values())
    return out


def _specificity(config: Config, video: Video) -> int:
    """How closely a video's entry names it: the depth of the entry's path (URLs: 0)."""
    path = config.sources[video.spec_index].path
    return 0 if path is None else len(Path(path).resolve().parts)


def cap_per_source(expansion: Expansion, limit: int | None) -> Expansion:
    """At most ``limit`` videos of each ``sources`` entry, the first listed (a trial run)."""
    if limit is None:
        return expansion
    taken: dict[int, int] = {}
    videos = []
    for v in expansion.videos:
        taken[v.spec_index] = taken.get(v.spec_index, 0) + 1
        if taken[v.spec_index] <= limit:
            videos.append(v)
    return Expansion(videos, expansion.failures, expansion.filtered)


def _expansion_options(config: Config) -> dict[str, Any]:
    """The user's yt-dlp options that matter to listing (cookies, proxies, ...), plus timeouts."""
    opts = dict(config.download.ytdlp)
    opts.setdefault("socket_timeout", config.download.socket_timeout)
    opts.setdefault("retries", config.download.retries)
    return opts


def _cached_url_videos(config: Config, index: int, state: State, expander: Expander,
                       ytdlp_options: dict[str, Any], refresh: bool) -> tuple[list[Video], list[Filtered]]:
    """The entry's videos, and those its filter left out, from the saved listing when there is
    one: a changed filter is decided on what the listing saw of each video (``_refiltered``),
    and lists the URL again only where that cannot tell."""
    spec: Source = config.sources[index]
    video_filter = config.filter_for(index)
    expression = video_filter.expression if video_filter is not None else None
    cache = state.layout.listings_dir / f"{short_hash(spec.url or '', 16)}.json"
    entries = None
    if cache.exists() and not refresh:
        saved = read_json_object(cache) or {}
        entries = saved.get("entries")
        valid = isinstance(entries, list) and all(
            isinstance(e, dict) and isinstance(e.get("sid"), str) and isinstance(e.get("url"), str)
            and isinstance(e.get("filtered", ""), str) and isinstance(e.get("seen", {}), dict)
            for e in entries)
        if not (valid and entries):  # damaged: list the URL again
            entries = None
        elif saved.get("filter") != expression:
            entries = _refiltered(entries, video_filter)
    if entries is None:
        entries = expander(spec.url or "", ytdlp_options, video_filter)
        if not entries:
            raise LookupError(f"{spec.url} lists no videos")
        write_json(cache, {"url": spec.url, "filter": expression, "entries": entries})
    videos, filtered = [], []
    for e in entries:
        video = Video(e["sid"], "url", e["url"], index, spec.label, tuple(spec.segments),
                      e.get("title") or None)
        if "filtered" in e:
            filtered.append(Filtered(video, e["filtered"]))
        else:
            videos.append(video)
    return videos, filtered


def _refiltered(entries: list[dict[str, Any]],
                video_filter: VideoFilter | None) -> list[dict[str, Any]] | None:
    """A saved listing's entries with the verdicts of another filter, decided on the fields the
    listing saw of each video (``seen``: the playlist's entry, or the video's page when the
    listing visited it), so a changed length or view limit asks the site nothing. None (list the
    URL again) when a video's fields cannot tell, as a licence a playlist does not give for a
    video whose page was not visited, or when the listing saved no fields (an earlier version).
    Not saved: the same listing is decided again, from the same fields, by the next command."""
    out = []
    for e in entries:
        entry = {k: v for k, v in e.items() if k != "filtered"}
        if video_filter is None:
            out.append(entry)
            continue
        if "seen" not in e:
            return None
        decided, why = decide(video_filter, e["seen"], page=e.get("page") is True)
        if not decided:
            return None
        out.append(entry if why is None else {**entry, "filtered": why})
    return out
