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
    track_id: N int32, the track (``pipeline.algo.track``) each detection belongs to within its source;
    ``-1`` where nothing has tracked it (straight out of a detector).
    """

    boxes: np.ndarray
    scores: np.ndarray
    class_id: np.ndarray
    landmarks: np.ndarray = field(default=None)  # type: ignore[assignment]
    track_id: np.ndarray = field(default=None)  # type: ignore[assignment]

    def __post_init__(self) -> None:
        self.boxes = np.asarray(self.boxes, dtype=np.float32).reshape(-1, 4)
        n = len(self.boxes)
        self.scores = np.asarray(self.scores, dtype=np.float32).reshape(n)
        self.class_id = np.asarray(self.class_id, dtype=np.int16).reshape(n)
        if self.landmarks is None:
            self.landmarks = _empty_landmarks(n)
        self.landmarks = np.asarray(self.landmarks, dtype=np.float32).reshape(n, 5, 2)
        if self.track_id is None:
            self.track_id = np.full(n, -1, dtype=np.int32)
        self.track_id = np.asarray(self.track_id, dtype=np.int32).reshape(n)

    @classmethod
    def empty(cls) -> Detections:
        return cls(np.zeros((0, 4)), np.zeros(0), np.zeros(0))

    @classmethod
    def concat(cls, parts: list[Detections]) -> Detections:
        """All detections of ``parts``, in order (several tiles of one frame)."""
        if not parts:
            return cls.empty()
        return cls(np.concatenate([p.boxes for p in parts]), np.concatenate([p.scores for p in parts]),
                   np.concatenate([p.class_id for p in parts]),
                   np.concatenate([p.landmarks for p in parts]),
                   np.concatenate([p.track_id for p in parts]))

    def __len__(self) -> int:
        return len(self.boxes)

    def __getitem__(self, index: Any) -> Detections:
        """Select by boolean mask, index array or slice (always returns Detections)."""
        if isinstance(index, (int, np.integer)):
            index = [int(index)]
        return Detections(self.boxes[index], self.scores[index], self.class_id[index],
                          self.landmarks[index], self.track_id[index])

    @property
    def area(self) -> np.ndarray:
        return self.boxes[:, 2] * self.boxes[:, 3]

    def scaled(self, factor: float) -> Detections:
        """Boxes and landmarks multiplied by ``factor`` (map a downscaled frame back)."""
        return Detections(self.boxes * factor, self.scores, self.class_id, self.landmarks * factor,
                          self.track_id)

    def shifted(self, dx: float, dy: float) -> Detections:
        """Boxes and landmarks moved by (dx, dy) (map a tile back into its frame)."""
        offset = np.array([dx, dy], dtype=np.float32)
        boxes = self.boxes.copy()
        boxes[:, :2] += offset
        return Detections(boxes, self.scores, self.class_id, self.landmarks + offset, self.track_id)

    def with_track_ids(self, track_id: np.ndarray) -> Detections:
        return Detections(self.boxes, self.scores, self.class_id, self.landmarks, track_id)

    def filtered(self, min_score: float = 0.0, min_size: float = 0.0,
                 max_count: int | None = None) -> Detections:
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
            "track_id": self.track_id.tolist(),
        }

    @classmethod
    def from_json(cls, row: dict[str, list]) -> Detections:
        n = len(row["boxes"])
        marks = _empty_landmarks(n)
        for i, lm in enumerate(row.get("landmarks") or []):
            if lm:
                marks[i] = lm
        tracks = row.get("track_id")  # absent in rows written before tracking existed
        return cls(np.asarray(row["boxes"], dtype=np.float32).reshape(n, 4), row["scores"],
                   row["class_id"], marks, tracks if tracks is not None else None)


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every ``x, y, w, h`` box in ``a`` with every one in ``b`` (len(a) x len(b))."""
    a = np.asarray(a, dtype=np.float32).reshape(-1, 1, 4)
    b = np.asarray(b, dtype=np.float32).reshape(1, -1, 4)
    iw = np.clip(np.minimum(a[..., 0] + a[..., 2], b[..., 0] + b[..., 2])
                 - np.maximum(a[..., 0], b[..., 0]), 0, None)
    ih = np.clip(np.minimum(a[..., 1] + a[..., 3], b[..., 1] + b[..., 3])
                 - np.maximum(a[..., 1], b[..., 1]), 0, None)
    inter = iw * ih
    union = a[..., 2] * a[..., 3] + b[..., 2] * b[..., 3] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-9), 0.0).astype(np.float32)


def nms(dets: Detections, iou_threshold: float) -> Detections:
    """Greedy non-maximum suppression per class: best score first, a box is dropped when it
    overlaps an already kept box of its class by more than ``iou_threshold``. Returns the kept
    detections best score first (ties: original order, so the result is deterministic)."""
    if len(dets) < 2:
        return dets
    order = np.argsort(-dets.scores, kind="stable")
    overlaps = box_iou(dets.boxes, dets.boxes)
    same = dets.class_id[:, None] == dets.class_id[None, :]
    alive = np.ones(len(dets), dtype=bool)
    kept = []
    for i in order:
        if not alive[i]:
            continue
        kept.append(i)
        alive &= ~((overlaps[i] > iou_threshold) & same[i])
    return dets[np.array(kept, dtype=int)]
