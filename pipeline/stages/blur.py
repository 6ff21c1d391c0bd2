"""Bystanders blurred in crops (``crop.blur_others``): every face inside a kept crop that is not
the crop's own subject is pixelated before the crop is saved.

A face crop's subject is its own detection; every other face detection of the frame that reaches
into the crop is covered. A person crop's subject is its person: the face detector runs once on
each frame with a crop (person detections carry no faces), each face goes to the person whose head
it sits in (``own_faces``), and every face but the crop's person's own is covered.

With ``identity.blur: {except: references}``, a face that would be covered stays sharp when its
vector lies within ``identity.max_distance`` of a reference photo's: the named people are never
blurred, everyone else is. One face at a time (the crop stage does not know tracks' identities,
which are settled after every source), so a named person's odd frame (a profile, motion blur) may
be covered: the safe side for a bystander.

How: pixelation of the face box grown by ``MARGIN`` on every side, 2 to ``BLOCKS`` blocks along
it of at least ``MIN_BLOCK`` pixels, computed on the whole face in the frame (so a face cut by the
crop's edge is covered as it would be whole) and pasted where it meets the crop. Measured on every
face YuNet finds in every 4th frame of the eight face clips of the test videos (205 faces, score
>= 0.7) and every 6th frame of ``tud_campus`` (51 faces, median 16 px wide, score >= 0.5), each
covered alone, then looking for a face again at score 0.3 where it was (IoU >= 0.3): Gaussian
blur with sigma 0.2 x the face size over the box grown by 20 % let 52 of the 205 be found again
(sigma 0.3: 7, at 31 ms a face); 6 blocks over the box grown by 20 % none of the 205 but 48 of
the 51 small faces; 2-6 blocks of >= 14 px over the box grown by 40 % none of either (>= 10 px:
6 of the 51), at 0.1-0.3 ms a face (docs/blur.md).

The subject's own box is never covered, also where a bystander's grown box overlaps it: the crop
is the subject's picture. A face the detector did not find (below ``detect.min_score``) is not
covered: blurring can hide only what was detected.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ..algo.cluster import distances
from ..config.schema import Config, Detect
from ..core.detections import Detections
from ..detectors.loaded import loaded_detector
from ..embedders import Face, create_embedder, embedder_class
from ..io.files import file_digest

BLOCKS = 6
"""Pixelation blocks along a face's grown box at most (measured above)..."""
MIN_BLOCK = 14
"""... and at least 2, each at least this many pixels: a small face in 6 blocks is hardly
changed (measured above)."""
MARGIN = 0.4
"""The face box grown by this fraction of its size on each side: the detector's box is tight,
and hair, ears and chin outline a face a detector still finds (measured above)."""
VERSION = "1"
"""Part of the crop stage's fingerprint when blurring: bump when the covering changes."""

HEAD = 0.1
"""Where a person's face is expected: at the middle of the box's width, this fraction of its
height below its top (a standing person's head is about an eighth of their height)."""
HEAD_ZONE = 0.5
"""A face belongs to no person whose box holds its centre lower than this fraction of the box's
height: a face at a person's waist is someone else's."""


@dataclass(frozen=True)
class Patch:
    """A covered face area, in frame pixels: ``pixels`` go at (``x``, ``y``)."""

    x: int
    y: int
    pixels: np.ndarray

    @property
    def w(self) -> int:
        return self.pixels.shape[1]

    @property
    def h(self) -> int:
        return self.pixels.shape[0]


def grown(box: Sequence[float], width: int, height: int) -> tuple[int, int, int, int]:
    """(x0, y0, x1, y1) of the box grown by ``MARGIN`` and clipped to the frame."""
    x, y, w, h = (float(v) for v in box)
    x0, y0 = max(0, int(np.floor(x - MARGIN * w))), max(0, int(np.floor(y - MARGIN * h)))
    x1 = min(width, int(np.ceil(x + w + MARGIN * w)))
    y1 = min(height, int(np.ceil(y + h + MARGIN * h)))
    return x0, y0, x1, y1


def pixelate(frame: np.ndarray, box: Sequence[float]) -> Patch | None:
    """The face's grown box pixelated, 2 to ``BLOCKS`` blocks along its long side, each at least
    ``MIN_BLOCK`` pixels (None: not in the frame)."""
    x0, y0, x1, y1 = grown(box, frame.shape[1], frame.shape[0])
    if x1 <= x0 or y1 <= y0:
        return None
    area = frame[y0:y1, x0:x1]
    w, h = x1 - x0, y1 - y0
    n = min(BLOCKS, max(2, max(w, h) // MIN_BLOCK))
    blocks = (max(1, round(n * w / max(w, h))), max(1, round(n * h / max(w, h))))
    small = cv2.resize(area, blocks, interpolation=cv2.INTER_AREA)
    return Patch(x0, y0, cv2.resize(small, (w, h), interpolation=cv2.INTER_NEAREST))


def cover(pixels: np.ndarray, at: tuple[int, int], patches: Sequence[Patch],
          keep: Sequence[float] | None = None) -> tuple[np.ndarray, int]:
    """``pixels`` (cut from the frame with their top-left at frame point ``at``) with every patch
    that reaches into them pasted, except over the ``keep`` box (x, y, w, h in frame pixels: the
    subject). Returns the new pixels (``pixels`` itself when nothing is covered) and how many
    patches were pasted."""
    out, count = pixels, 0
    ox, oy = at
    h, w = pixels.shape[:2]
    for p in patches:
        x0, y0 = max(p.x, ox), max(p.y, oy)
        x1, y1 = min(p.x + p.w, ox + w), min(p.y + p.h, oy + h)
        if x1 <= x0 or y1 <= y0:
            continue
        if out is pixels:
            out = pixels.copy()
        before = out[y0 - oy:y1 - oy, x0 - ox:x1 - ox].copy()
        out[y0 - oy:y1 - oy, x0 - ox:x1 - ox] = p.pixels[y0 - p.y:y1 - p.y, x0 - p.x:x1 - p.x]
        if keep is not None:
            _restore(out, before, (x0 - ox, y0 - oy), keep, at)
        count += 1
    return out, count


def _restore(out: np.ndarray, before: np.ndarray, corner: tuple[int, int],
             keep: Sequence[float], at: tuple[int, int]) -> None:
    """Put back the pixels of ``before`` (pasted at ``corner`` of ``out``) that lie in the ``keep`` box."""
    kx0, ky0 = int(np.floor(keep[0])) - at[0], int(np.floor(keep[1])) - at[1]
    kx1, ky1 = int(np.ceil(keep[0] + keep[2])) - at[0], int(np.ceil(keep[1] + keep[3])) - at[1]
    cx, cy = corner
    bh, bw = before.shape[:2]
    x0, y0 = max(kx0, cx), max(ky0, cy)
    x1, y1 = min(kx1, cx + bw), min(ky1, cy + bh)
    if x1 > x0 and y1 > y0:
        out[y0:y1, x0:x1] = before[y0 - cy:y1 - cy, x0 - cx:x1 - cx]


def own_faces(persons: np.ndarray, faces: np.ndarray) -> dict[int, int]:
    """{person index: face index}: each face goes to the person whose expected head point (``HEAD``)
    it is nearest to, in person-box sizes, among the persons whose box holds its centre in its
    upper ``HEAD_ZONE``; each person keeps the nearest of the faces that went to them."""
    best: dict[int, tuple[float, int]] = {}
    for j, (fx, fy, fw, fh) in enumerate(faces):
        cx, cy = fx + fw / 2, fy + fh / 2
        reach = [(np.hypot((cx - (px + pw / 2)) / pw, (cy - (py + HEAD * ph)) / ph), i)
                 for i, (px, py, pw, ph) in enumerate(persons)
                 if px <= cx <= px + pw and py <= cy <= py + HEAD_ZONE * ph]
        if reach:
            d, i = min(reach)
            if i not in best or d < best[i][0]:
                best[i] = (d, j)
    return {i: j for i, (_, j) in best.items()}


@dataclass
class NamedPeople:
    """Faces of the people named by ``identity.references`` (``identity.blur``): stay sharp."""

    embedder: Any
    references: np.ndarray  # one row per reference photo
    max_distance: float
    metric: str

    def named(self, frame: np.ndarray, faces: Detections) -> np.ndarray:
        """Per face: within ``max_distance`` of some reference."""
        if len(faces) == 0:
            return np.zeros(0, bool)
        marks = [None if np.isnan(m).all() else m for m in faces.landmarks]
        vectors = self.embedder.embed(frame, [Face((float(b[0]), float(b[1]), float(b[2]), float(b[3])), m)
                                              for b, m in zip(faces.boxes, marks)])
        return distances(vectors, self.references, self.metric).min(axis=1) <= self.max_distance


@dataclass
class Bystanders:
    """What one source's crops need to cover their bystanders: the face detector of a person run,
    the named people of ``identity.blur``. Built once per source (``for_config``)."""

    min_score: float
    face_detector: Any = None  # person runs: faces are found on the frame
    named: NamedPeople | None = None

    def plan(self, frame: np.ndarray, dets: Detections) -> list[tuple[list[Patch], Any]]:
        """Per detection of the frame: the patches its crop gets, and the box kept sharp (its own face)."""
        if self.face_detector is None:
            faces, own = dets, {i: i for i in range(len(dets))}
        else:
            faces = self.face_detector.detect(frame).filtered(self.min_score)
            own = own_faces(dets.boxes, faces.boxes)
        hidden = ~self.named.named(frame, faces) if self.named is not None else np.ones(len(faces), bool)
        patches = {j: pixelate(frame, faces.boxes[j]) for j in range(len(faces)) if hidden[j]}
        return [([p for j, p in patches.items() if j != own.get(i) and p is not None],
                 faces.boxes[own[i]] if i in own else None) for i in range(len(dets))]


def for_config(config: Config) -> Bystanders | None:
    """The bystander cover of a config, or None when ``crop.blur_others`` is off."""
    if not config.crop.blur_others:
        return None
    detector, min_score = None, config.detect.min_score
    if config.detect.model != "yunet":
        face = face_section(config)
        detector, min_score = loaded_detector(face), face.min_score
    return Bystanders(min_score, detector, named_people(config))


FACE_PASS_MIN_SCORE = 0.5
"""The score from which a person run's face pass covers a face: lower than a face run keeps
(0.7), as a face missed here stays sharp. On the sampled frames of ``tud_campus`` (every 0.2 s,
55 person crops) it covered 44 faces in the crops against 30 at 0.7."""


def face_section(config: Config) -> Detect:
    """The face detector a person run covers faces with: YuNet from ``FACE_PASS_MIN_SCORE``, on
    the run's ``detect.input_size`` and ``tiles`` (small faces in a wide frame need the tiles)."""
    return Detect(model="yunet", min_score=FACE_PASS_MIN_SCORE, input_size=config.detect.input_size,
                  tiles=config.detect.tiles)


def named_people(config: Config) -> NamedPeople | None:
    """The references' vectors when ``identity.blur`` asks to keep them sharp."""
    ident = config.identity
    if ident is None or ident.blur is None:
        return None
    # lazy: the identity step imports the stages (a cycle at import time)
    from ..steps.identity import reference_vectors

    refs = reference_vectors(config)
    return NamedPeople(create_embedder(ident.model), np.stack([r.vector for r in refs]),
                       ident.max_distance, embedder_class(ident.model).metric)


def fingerprint_parts(config: Config) -> list[Any]:
    """What the covered crops depend on beyond ``crop``: nothing when off (a run without blurring
    keeps the fingerprint it had before blurring existed)."""
    if not config.crop.blur_others:
        return []
    parts: list[Any] = [{"blur": VERSION, "blocks": BLOCKS, "min_block": MIN_BLOCK, "margin": MARGIN}]
    if config.detect.model != "yunet":
        face = face_section(config)
        parts.append([face.model_dump(), loaded_detector(face).version])
    ident = config.identity
    if ident is not None and ident.blur is not None:
        parts.append({"embedder": create_embedder(ident.model).version, "max_distance": ident.max_distance,
                      "references": {name: [file_digest(Path(p).expanduser()) for p in photos]
                                     for name, photos in sorted(ident.references.items())}})
    return parts
