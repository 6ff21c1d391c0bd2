"""The one detection record every stage speaks: a frame's boxes as numpy arrays.

Like supervision's ``Detections``, a set of N detections is a handful of parallel arrays rather
than a list of little objects, so filtering, scaling and sorting are vectorised one-liners and
the same value flows from a detector through the detect stage's JSONL to the crop stage.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

CLASS_NAMES = ("face", "person")
"""Class ids are indexes into this tuple (``class_id == 0`` is a face)."""


def _empty_landmarks(n: int) -> np.ndarray:
    return np.full((n, 5, 2), np.nan, dtype=np.float32)


@dataclass
class Detections:
    """N detections in source-frame pixels.

    boxes: N x 4 float32, ``x, y, w, h`` (top-left corner and size).
    scores: N float32 in [0, 1].
    class_id: N int16, index into ``CLASS_NAMES``.
    landmarks: N x 5 x 2 float32 (eyes, nose tip, mouth corners for faces); NaN where a detector
    gives none, so the array keeps one shape whatever the detector.
    """

    boxes: np.ndarray
    scores: np.ndarray
    class_id: np.ndarray
    landmarks: np.ndarray = field(default=None)  # type: ignore[assignment]

    def __post_init__(self) -> None:
        self.boxes = np.asarray(self.boxes, dtype=np.float32).reshape(-1, 4)
        n = len(self.boxes)
        self.scores = np.asarray(self.scores, dtype=np.float32).reshape(n)
        self.class_id = np.asarray(self.class_id, dtype=np.int16).reshape(n)
        if self.landmarks is None:
            self.landmarks = _empty_landmarks(n)
        self.landmarks = np.asarray(self.landmarks, dtype=np.float32).reshape(n, 5, 2)

    @classmethod
    def empty(cls) -> "Detections":
        return cls(np.zeros((0, 4)), np.zeros(0), np.zeros(0))

    def __len__(self) -> int:
        return len(self.boxes)

    def __getitem__(self, index: Any) -> "Detections":
        """Select by boolean mask, index array or slice (always returns Detections)."""
        if isinstance(index, (int, np.integer)):
            index = [int(index)]
        return Detections(self.boxes[index], self.scores[index], self.class_id[index],
                          self.landmarks[index])

    @property
    def area(self) -> np.ndarray:
        return self.boxes[:, 2] * self.boxes[:, 3]

    def scaled(self, factor: float) -> "Detections":
        """Boxes and landmarks multiplied by ``factor`` (map a downscaled frame back)."""
        return Detections(self.boxes * factor, self.scores, self.class_id, self.landmarks * factor)

    def filtered(self, min_score: float = 0.0, min_size: float = 0.0,
                 max_count: int | None = None) -> "Detections":
        """Drop weak and small boxes, then keep the ``max_count`` best by score (best first)."""
        keep = (self.scores >= min_score) & (np.minimum(self.boxes[:, 2], self.boxes[:, 3]) >= min_size)
        kept = self[keep]
        order = np.argsort(-kept.scores, kind="stable")
        if max_count is not None:
            order = order[:max_count]
        return kept[order]

    def to_json(self) -> dict[str, list]:
        """Plain lists for one JSONL row; NaN landmarks become an empty list."""
        marks = [[] if np.isnan(lm).all() else np.round(lm, 2).tolist() for lm in self.landmarks]
        return {
            "boxes": np.round(self.boxes, 2).tolist(),
            "scores": np.round(self.scores, 4).tolist(),
            "class_id": self.class_id.tolist(),
            "landmarks": marks,
        }

    @classmethod
    def from_json(cls, row: dict[str, list]) -> "Detections":
        n = len(row["boxes"])
        marks = _empty_landmarks(n)
        for i, lm in enumerate(row.get("landmarks") or []):
            if lm:
                marks[i] = lm
        return cls(np.asarray(row["boxes"], dtype=np.float32).reshape(n, 4), row["scores"],
                   row["class_id"], marks)
