"""Face embedders for the identity stage, behind one interface and the detectors' model cache."""
from __future__ import annotations

from functools import lru_cache

from .base import Embedder, Face
from .dlib import DlibEmbedder
from .sface import SFaceEmbedder

EMBEDDERS = ("dlib", "sface")
"""Known embedder names; the first is the default."""


def embedder_class(name: str) -> type[Embedder]:
    """The class behind a name: its weights and metric, without loading anything."""
    if name == "dlib":
        return DlibEmbedder
    if name == "sface":
        return SFaceEmbedder
    raise ValueError(f"unknown identity model {name!r}; known: {', '.join(EMBEDDERS)}")


@lru_cache(maxsize=2)
def create_embedder(name: str) -> Embedder:
    """A ready embedder (one per process: loading weights once); may fetch its weights first."""
    return embedder_class(name)()


__all__ = ["EMBEDDERS", "Embedder", "Face", "create_embedder", "embedder_class"]
