"""How a person looks, cheaply: a colour histogram of the middle of their box.

Used by the tracker (``pipeline.algo.track``) only to check a re-found track: a walker hidden for
a second beside another walker who moves alike cannot be told apart by motion, but their clothes
usually differ. Hue x saturation (8 x 4 bins) of the box's middle (20-80 % of its width, 20-60 %
of its height: the torso, without the head, the legs and most of the background at the sides),
compared by the Bhattacharyya distance (0: the same colours, 1: none in common). Brightness is
left out, so a walker passing from sun into shade still matches.
"""
from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

__all__ = ["Looks", "colour_distance", "torso_histogram"]

BINS = (8, 4)


def torso_histogram(image: np.ndarray, box: np.ndarray) -> np.ndarray:
    """The normalised hue x saturation histogram of the middle of ``box`` (x, y, w, h) in a BGR
    ``image``; all zeros when that region falls outside the image."""
    x, y, w, h = (float(v) for v in box)
    height, width = image.shape[:2]
    x0, x1 = (int(np.clip(x + f * w, 0, width)) for f in (0.2, 0.8))
    y0, y1 = (int(np.clip(y + f * h, 0, height)) for f in (0.2, 0.6))
    if x1 <= x0 or y1 <= y0:
        return np.zeros(BINS[0] * BINS[1], dtype=np.float32)
    hsv = cv2.cvtColor(np.ascontiguousarray(image[y0:y1, x0:x1]), cv2.COLOR_BGR2HSV)
    hist = cv2.calcHist([hsv], [0, 1], None, list(BINS), [0, 180, 0, 256]).ravel()
    return (hist / max(float(hist.sum()), 1e-9)).astype(np.float32)


def colour_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Bhattacharyya distance of two normalised histograms (0 same .. 1 disjoint); 1 when either
    is empty (nothing seen: no evidence of a match)."""
    if a.sum() <= 0 or b.sum() <= 0:
        return 1.0
    return float(np.sqrt(max(0.0, 1.0 - float(np.sum(np.sqrt(a * b))))))


class Looks:
    """``look(position, box)``: the torso histogram of ``box`` in the sampled frame at
    ``position``, the frame read from its file only when asked (the tracker asks for the few
    frames around a re-found track) and the last few kept in memory."""

    def __init__(self, files: Sequence[Path]):
        self.files = list(files)
        self._image = lru_cache(maxsize=8)(self._read)

    def _read(self, position: int) -> np.ndarray:
        image = cv2.imread(str(self.files[position]))
        if image is None:
            raise OSError(f"cannot read frame {self.files[position]}")
        return image

    def __call__(self, position: int, box: np.ndarray) -> np.ndarray:
        return torso_histogram(self._image(position), box)
