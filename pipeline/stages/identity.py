"""Identity stage: one face vector per kept face crop of a source (``identity.model``).

Output: ``identity/<sid>.npz`` with ``crop_id`` (strings) and ``vector`` (n x dim float32), in
crop order. The faces are embedded on the sampled frame (``frames/<sid>/``), not on the saved
crop: the crop is padded and resized, the embedder aligns the face itself.

Only the embedder and its weights, and the crops upstream, are in the fingerprint: the clustering
threshold, reference photos and ``keep`` are global steps (``pipeline.steps.identity``), so re-tuning
them never embeds again.
"""
from __future__ import annotations

import io
import json
import time
from dataclasses import dataclass
from itertools import groupby
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ..core.layout import OutputLayout
from ..config.schema import Config
from ..embedders import Embedder, Face, create_embedder
from ..algo.quality import KEPT
from ..core.records import Video
from ..io.files import read_jsonl, write_atomic
from ..state.markers import fingerprint
from .base import FACES, Context, Produced, Rate, Result, Results, Stage

VERSION = "1"
EMBED_SECONDS = {"dlib": 0.0907}
"""Seconds to embed one face when no earlier run recorded any: scripts/bench.py's identity
section (dlib, 90.7 ms a face on a 2-core machine; docs/identity.md). sface: not measured."""


@dataclass(frozen=True)
class IdentityResult(Result):
    """Face crops embedded, the embedder's version, and its speed here (``plan`` reads it)."""

    embedded: int
    model: str
    ms_per_embedding: float | None

    def to_json(self) -> dict[str, Any]:
        return {"embedded": self.embedded, "model": self.model,
                "ms_per_embedding": self.ms_per_embedding}

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> IdentityResult:
        return cls(raw.get("embedded", 0), raw.get("model", ""), raw.get("ms_per_embedding"))

    def amounts(self) -> dict[str, int]:
        return {FACES: self.embedded}


def embedder_for(config: Config) -> Embedder:
    assert config.identity is not None
    return create_embedder(config.identity.model)


def stage_fingerprint(config: Config, upstream: str) -> str:
    return fingerprint(VERSION, embedder_for(config).version, upstream)


def output_path(root: Path, sid: str) -> Path:
    return OutputLayout(root).vectors(sid)


def face_of(row: dict[str, Any]) -> Face:
    """The detection a crop row was cut from, as the embedder wants it."""
    marks = json.loads(row["landmarks"]) if row.get("landmarks") else None
    return Face((row["box_x"], row["box_y"], row["box_w"], row["box_h"]),
                None if marks is None else np.asarray(marks, dtype=np.float32))


def frame_files(root: Path, sid: str) -> dict[int, str]:
    """{t_ms: frame file name} from the detect stage's rows."""
    return {r["t_ms"]: r["file"] for r in read_jsonl(OutputLayout(root).detections(sid))}


def save_vectors(path: Path, crop_ids: list[str], vectors: np.ndarray) -> None:
    buf = io.BytesIO()
    np.savez(buf, crop_id=np.array(crop_ids, dtype=str), vector=vectors.astype(np.float32))
    write_atomic(path, buf.getvalue())


def load_vectors(path: Path) -> dict[str, np.ndarray]:
    with np.load(path) as data:
        return dict(zip(data["crop_id"].tolist(), data["vector"]))


def run(video: Video, config: Config, root: Path, progress: bool = False
        ) -> Produced[IdentityResult]:
    embedder = embedder_for(config)
    layout = OutputLayout(root)
    rows = [r for r in read_jsonl(layout.crops_index(video.sid))
            if r.get("status", KEPT) == KEPT and r["class"] == "face"]
    files = frame_files(root, video.sid) if rows else {}
    ids: list[str] = []
    vectors: list[np.ndarray] = []
    started = time.perf_counter()
    for t_ms, same_frame in groupby(rows, key=lambda r: r["t_ms"]):
        group = list(same_frame)
        frame_path = layout.frames_dir(video.sid) / files[t_ms]
        frame = cv2.imread(str(frame_path))
        if frame is None:
            raise OSError(f"cannot read frame {frame_path}")
        vectors.append(embedder.embed(frame, [face_of(r) for r in group]))
        ids += [r["crop_id"] for r in group]
    seconds = time.perf_counter() - started
    out = output_path(root, video.sid)
    save_vectors(out, ids, np.concatenate(vectors) if vectors else np.zeros((0, embedder.dim)))
    return [str(out.relative_to(root))], IdentityResult(
        len(ids), embedder.version, round(1000 * seconds / len(ids), 1) if ids else None)


def configured(config: Config) -> bool:
    """The stage runs only with an ``identity`` section."""
    return config.identity is not None


class IdentityStage(Stage[IdentityResult]):
    name, version, result = "identity", VERSION, IdentityResult
    work = FACES

    def enabled(self, config: Config) -> bool:
        return configured(config)

    def benchmark(self, config: Config) -> Rate | None:
        ident = config.identity
        figure = None if ident is None else EMBED_SECONDS.get(ident.model)
        if ident is None or figure is None:
            return None
        return Rate(figure, f"{ident.model}'s benchmark figure")

    def fingerprint(self, ctx: Context, upstream: str) -> str:
        return stage_fingerprint(ctx.config, upstream)

    def run(self, ctx: Context, inputs: Results) -> Produced[IdentityResult]:
        return run(ctx.video, ctx.config, ctx.root, ctx.progress)


STAGE = IdentityStage()
