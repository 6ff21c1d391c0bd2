"""Box arithmetic and clip decoding shared by the tests that score detections against ground truth."""
from __future__ import annotations

from functools import cache
from pathlib import Path

import cv2
import numpy as np

from pipeline.core.detections import Detections


@cache
def frames(path: Path) -> tuple[np.ndarray, ...]:
    """Every frame of a clip, decoded once per test session."""
    cap = cv2.VideoCapture(str(path))
    out = []
    ok, frame = cap.read()
    while ok:
        out.append(frame)
        ok, frame = cap.read()
    cap.release()
    assert out, f"could not decode {path}"
    return tuple(out)


def iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every x, y, w, h box in ``a`` with every one in ``b`` (len(a) x len(b))."""
    a, b = a[:, None, :], b[None, :, :]
    iw = np.clip(np.minimum(a[..., 0] + a[..., 2], b[..., 0] + b[..., 2])
                 - np.maximum(a[..., 0], b[..., 0]), 0, None)
    ih = np.clip(np.minimum(a[..., 1] + a[..., 3], b[..., 1] + b[..., 3])
                 - np.maximum(a[..., 1], b[..., 1]), 0, None)
    inter = iw * ih
    return inter / (a[..., 2] * a[..., 3] + b[..., 2] * b[..., 3] - inter)


def matched(gt: np.ndarray, found: Detections, threshold: float = 0.5) -> np.ndarray:
    """Per ground-truth box: does some detection overlap it with IoU >= threshold?"""
    if len(gt) == 0 or len(found) == 0:
        return np.zeros(len(gt), dtype=bool)
    return iou(gt, found.boxes).max(axis=1) >= threshold


@cache
def detect_clip(path: Path, model: str, weights: Path | None,
                **options) -> tuple[tuple[Detections, ...], float]:
    """Every frame's detections by ``model`` (the weights file given directly, no model cache;
    None: the weights shipped with the package) with ``options`` (backend, tiles, upscale, ...),
    and the milliseconds a frame it took; computed once per test session, so tests that score the
    same detections share them."""
    import time

    from pipeline.detectors.registry import create_detector

    detector = create_detector(model, weights=str(weights) if weights else None, **options)
    clip = frames(path)
    detector.detect(clip[0])  # warm-up: network allocation is not a per-frame cost
    started = time.perf_counter()
    found = tuple(detector.detect(frame) for frame in clip)
    return found, (time.perf_counter() - started) / len(clip) * 1000
