"""Face embedders for the identity stage, behind one interface and the detectors' model cache."""
from __future__ import annotations

from functools import lru_cache

from .base import Embedder, Face

EMBEDDERS = ("dlib",)
"""Known embedder names; the first is the default."""


@lru_cache(maxsize=2)
def create_embedder(name: str) -> Embedder:
    """A ready embedder (one per process: loading weights once); may fetch its weights first."""
    if name == "dlib":
        from .dlib import DlibEmbedder

        return DlibEmbedder()
    raise ValueError(f"unknown identity model {name!r}; known: {', '.join(EMBEDDERS)}")


__all__ = ["EMBEDDERS", "Embedder", "Face", "create_embedder"]
