"""The embedder interface: face boxes of a BGR frame in, one identity vector per face out.

Why a frame and boxes rather than the saved crop: crops are padded, resized and may be filled
with border colour, whereas a face recogniser wants the face aligned by its own landmarks on the
original pixels. The identity stage therefore reads the sampled frame again.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from ..detectors.modelfiles import ModelSpec


@dataclass(frozen=True)
class Face:
    """One face of a frame: its box (x, y, w, h in frame pixels) and, when the detector gave
    them, its five landmarks (YuNet order: right eye, left eye, nose, mouth corners)."""

    box: tuple[float, float, float, float]
    landmarks: np.ndarray | None = None


class Embedder(ABC):
    """Turns faces into vectors whose distance (``metric``) says how likely two are one person."""

    name: ClassVar[str]
    dim: ClassVar[int]
    files: ClassVar[tuple[ModelSpec, ...]]
    """Weights it keeps in the model cache."""
    metric: ClassVar[str] = "euclidean"
    """How two vectors compare: ``euclidean`` distance (dlib), or ``cosine`` distance
    (``1 - cos``) for an embedder whose vectors are L2-normalised (sface)."""

    @property
    def version(self) -> str:
        """Changes whenever the vectors would: the backend and its weights' sha256s."""
        return ":".join([self.name, *(f.sha256[:12] for f in self.files)])

    @abstractmethod
    def embed(self, frame: np.ndarray, faces: list[Face]) -> np.ndarray:
        """An (n, dim) float32 array: one vector per face, in order."""
