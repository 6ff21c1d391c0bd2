"""The detector interface: a BGR frame in, ``Detections`` in source-frame pixels out."""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

import cv2
import numpy as np

from ..detections import Detections

DEFAULT_INPUT_SIZE = 640
"""Long side, in pixels, of the copy of the frame a detector looks at."""

CANDIDATE_MIN_SCORE = 0.3
"""Detectors return every box at least this confident.

Why so low: the user's ``detect.min_score`` is applied afterwards with ``Detections.filtered``, so
one detection pass serves any threshold, and scores near the cut stay visible for tuning.
"""


def downscale(frame: np.ndarray, max_side: int) -> tuple[np.ndarray, float]:
    """A copy of ``frame`` whose long side is at most ``max_side``, and the factor back.

    Never upscales: small frames go to the detector as they are (factor 1). INTER_AREA because
    it averages pixels instead of skipping them, so small faces survive the shrink.
    """
    h, w = frame.shape[:2]
    factor = max(h, w) / max_side
    if factor <= 1.0:
        return frame, 1.0
    size = (max(1, round(w / factor)), max(1, round(h / factor)))
    return cv2.resize(frame, size, interpolation=cv2.INTER_AREA), factor


def clip_to_frame(dets: Detections, width: int, height: int) -> Detections:
    """Boxes cut to the frame; boxes left with no area are dropped.

    Detectors happily predict boxes that stick out of the image (a face at the edge); crops and
    the manifest want coordinates that exist.
    """
    x1 = np.clip(dets.boxes[:, 0], 0, width)
    y1 = np.clip(dets.boxes[:, 1], 0, height)
    x2 = np.clip(dets.boxes[:, 0] + dets.boxes[:, 2], 0, width)
    y2 = np.clip(dets.boxes[:, 1] + dets.boxes[:, 3], 0, height)
    boxes = np.stack([x1, y1, x2 - x1, y2 - y1], axis=1)
    keep = (boxes[:, 2] > 0) & (boxes[:, 3] > 0)
    return Detections(boxes, dets.scores, dets.class_id, dets.landmarks)[keep]


class Detector(ABC):
    """A model that finds one kind of object.

    Subclasses implement ``_detect`` on a frame that is already small; the shared ``detect``
    does the resizing and the mapping back, so every detector agrees on coordinates.
    """

    name: ClassVar[str]
    """Registry name (``yunet``)."""
    classes: ClassVar[tuple[str, ...]]
    """Names from ``CLASS_NAMES`` this detector can return."""
    code_version: ClassVar[str] = "1"
    """Bump when a change of the subclass's code changes its output."""

    def __init__(self, backend: str, weights_id: str, runtime: str,
                 input_size: int = DEFAULT_INPUT_SIZE) -> None:
        """``weights_id`` names the exact weights (a sha256 prefix), ``runtime`` the library
        that runs them (``opencv-5.0.0``): both go into ``version``."""
        if input_size < 32:
            raise ValueError(f"input_size must be at least 32 pixels, got {input_size}")
        self.backend = backend
        self.input_size = input_size
        self._weights_id = weights_id
        self._runtime = runtime

    @property
    def version(self) -> str:
        """Identifies everything that shapes the output; resume fingerprints include it, so a
        change of weights, backend, library, input size or code redoes detection."""
        return "/".join([self.name, self.backend, self._weights_id, self._runtime,
                         f"in{self.input_size}", f"code{self.code_version}"])

    def detect(self, frame_bgr: np.ndarray) -> Detections:
        """All candidates (score >= ``CANDIDATE_MIN_SCORE``) in ``frame_bgr``'s pixels."""
        if frame_bgr.ndim != 3 or frame_bgr.shape[2] != 3:
            raise ValueError(f"expected an H x W x 3 BGR frame, got shape {frame_bgr.shape}")
        small, factor = downscale(frame_bgr, self.input_size)
        found = self._detect(np.ascontiguousarray(small))
        height, width = frame_bgr.shape[:2]
        return clip_to_frame(found.scaled(factor), width, height)

    @abstractmethod
    def _detect(self, small_bgr: np.ndarray) -> Detections:
        """Detections in ``small_bgr``'s pixels, scores in [0, 1]."""

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.version}>"
