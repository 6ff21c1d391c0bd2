"""One loaded detector per process and ``detect`` section: the detect stage and the crop stage's
face pass over person crops (``stages/blur.py``) both take theirs here, so the weights load once
in a process, not once a source, and neither stage imports the other."""
from __future__ import annotations

from functools import lru_cache

from ..config.schema import Detect
from .base import Detector


@lru_cache(maxsize=4)
def loaded_detector(section: Detect) -> Detector:
    """The ready detector of ``section`` (may download its weights into the cache first)."""
    # lazy: the detectors (onnxruntime) add 80 ms to every command's start, --help included
    from .registry import create_detector

    return create_detector(section.model, backend=section.backend, weights=section.weights,
                           input_size=section.input_size, tiles=section.tiles,
                           upscale=section.upscale)
