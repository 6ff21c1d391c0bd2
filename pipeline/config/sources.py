"""The config's sections about where videos come from: ``sources`` entries, their segments, and
the ``download`` options (yt-dlp's, minus the ones that would run a program)."""
from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Annotated, Any

from pydantic import AfterValidator, Field, model_validator

from .fields import Label, Model, PositiveFloat, Time, UserPath, at_least


class Segment(Model):
    """A time range of a source to use; it may relabel what is cropped inside it."""

    start: Time = 0.0
    end: Time | None = None
    label: Label | None = None

    @model_validator(mode="after")
    def _ordered(self) -> Segment:
        if self.end is not None and self.end <= self.start:
            raise ValueError(f"end ({self.end:g} s) must be after start ({self.start:g} s)")
        return self


_URL_RE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://\S+$")


_SEARCH_RE = re.compile(r"^[a-z]+search[a-z]*(?:[1-9][0-9]*|all)?:\S")
"""yt-dlp's search prefixes: ``ytsearch:``, ``ytsearch20:``, ``ytsearchdate5:``, ``scsearch:``, ..."""


def _check_url(v: str) -> str:
    """A URL with a scheme, or a yt-dlp search; anything else yt-dlp would fail to list at run time."""
    if not (_URL_RE.match(v.strip()) or _SEARCH_RE.match(v.strip())):
        raise ValueError(f"'{v}' is not a URL: give one with its scheme (https://...) or a yt-dlp "
                         "search such as \"ytsearch20:words\"")
    return v.strip()


class Source(Model):
    """One entry of ``sources``: a yt-dlp URL (video, playlist, channel, search) or a local path."""

    url: Annotated[str, AfterValidator(_check_url)] | None = None
    path: UserPath | None = None
    label: Label | None = None
    segments: list[Segment] = Field(default_factory=list)

    @model_validator(mode="after")
    def _one_of(self) -> Source:
        if (self.url is None) == (self.path is None):
            raise ValueError("give exactly one of 'url' or 'path'")
        return self


_RUNS_PROGRAM = "runs the program it names"


_COMMAND_OPTIONS = {
    "netrc_cmd": "runs a command",
    "ffmpeg_location": _RUNS_PROGRAM,
    "external_downloader_args": "passes arguments to a program (aria2c runs commands it is given)",
    "postprocessor_args": "passes arguments to a program (ffmpeg writes any file it is given)",
    "print_to_file": "appends text to any file it names (a shell start-up file runs it)",
    "exec_cmd": "runs a command",  # older yt-dlp releases read these two top-level keys
    "exec_before_dl_cmd": "runs a command",
}
"""yt-dlp options (``YoutubeDL`` parameters) that run a program of the config's choosing."""


_EXEC_POSTPROCESSORS = frozenset({"exec", "execafterdownload"})


def _runs_programs(opts: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(key path under ``download.ytdlp``, what it does) for each yt-dlp option in ``opts`` that
    runs a program the config chooses: a shell command (the Exec postprocessor, ``netrc_cmd``),
    an executable by path (ffmpeg, an external downloader, a JavaScript runtime), or arguments
    that make one run commands."""
    for key, what in _COMMAND_OPTIONS.items():
        if key in opts:
            yield key, what
    downloaders = opts.get("external_downloader")
    downloaders = downloaders if isinstance(downloaders, dict) else {"default": downloaders}
    if any(d is not None and str(d).lower() != "native" for d in downloaders.values()):
        yield "external_downloader", _RUNS_PROGRAM
    runtimes = opts.get("js_runtimes")
    for name, settings in (runtimes.items() if isinstance(runtimes, dict) else ()):
        if isinstance(settings, dict) and "path" in settings:
            yield f"js_runtimes.{name}.path", _RUNS_PROGRAM
    postprocessors = opts.get("postprocessors")
    for i, pp in enumerate(postprocessors if isinstance(postprocessors, list) else ()):
        if isinstance(pp, dict) and (str(pp.get("key", "")).lower() in _EXEC_POSTPROCESSORS
                                     or "exec_cmd" in pp):
            yield f"postprocessors.{i}", f"runs a command ({pp.get('key')})"


class Download(Model):
    format: str = "bv*[height<=720]/b[height<=720]/bv*/b"
    sections_only: bool = True
    retries: Annotated[int, at_least(0)] = 3
    socket_timeout: PositiveFloat = 30.0
    ytdlp: dict[str, Any] = Field(default_factory=dict)
    # A config is a file people share: yt-dlp options that run programs (_runs_programs) are
    # refused unless its reader sets this.
    allow_commands: bool = False

    def commands(self) -> list[str]:
        """``ytdlp.KEY: what it does`` for each option that runs a program, when not allowed."""
        return [] if self.allow_commands else [f"ytdlp.{k}: {what}"
                                               for k, what in _runs_programs(self.ytdlp)]
