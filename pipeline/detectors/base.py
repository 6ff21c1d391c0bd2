"""The detector interface: a BGR frame in, ``Detections`` in source-frame pixels out.

Small subjects: a detector sees a shrunk copy of the frame (SSDLite always 300x300), so people far
from the camera and small faces fall under its smallest anchors. ``Detector.detect`` can therefore
also look at overlapping *tiles* of the frame (each shown at a larger scale, the boxes merged by
NMS, like SAHI or supervision's InferenceSlicer) and *upscale* small frames. ``plan_views`` decides
what to look at from the frame size and the detector's input, so every detector gets it alike.
"""
from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar, Literal

import cv2
import numpy as np

from ..core.detections import Detections, nms

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


TileSpec = Literal["auto", "off"] | int
"""``detect.tiles``: ``auto``, ``off`` or the number of tiles along the frame's long side."""
UpscaleSpec = Literal["auto", "off"] | float
"""``detect.upscale``: ``auto``, ``off`` or the largest factor a small frame is enlarged by."""

TILE_OVERLAP = 0.5
"""Neighbouring tiles share half their width: anything narrower than half a tile is whole in some
tile, and anything larger is whole in the full-frame view that always runs as well."""
TILE_MAX_ASPECT = 1.25
"""The short side is cut into as many rows as keep a tile no more elongated than this."""
FIXED_INPUT_REACH = 1.6
"""auto, fixed-input detector: tile when the frame's long side exceeds this many times the
network input (SSDLite: 1.6 x 300 = 480 px), so each tile is squeezed at most about that much."""
VARIABLE_INPUT_REACH = 2.0
"""auto, any-size detector: tile only when the frame is shrunk more than 2x to ``input_size``
(raising ``input_size`` does the same job for a fully convolutional net, without seams)."""
AUTO_MAX_TILES = 3
"""auto never uses more tiles than this along the long side (plus rows): cost stays at most a
few detector passes; ``detect.tiles: N`` asks for more."""
AUTO_UPSCALE_MAX = 2.0
"""auto, any-size detector: frames smaller than ``input_size`` are enlarged up to 2x."""
EDGE_MARGIN = 0.01
"""A tile's box that comes this close (fraction of the tile) to an inner tile edge is cut by it;
it is dropped, as a neighbouring tile or the full view sees the object whole."""
MERGE_IOU = 0.5
"""Boxes of the views of one frame that overlap more than this are one object (NMS); a detector
may set its own (``Detector.merge_iou``)."""


@dataclass(frozen=True)
class View:
    """A rectangle of the frame a detector looks at, and the scale it is shown at."""

    x: int
    y: int
    w: int
    h: int
    scale: float
    tile: bool  # False: the whole frame


def _cuts(side: int, n: int) -> list[tuple[int, int]]:
    """``n`` intervals (start, length) covering ``side`` with ``TILE_OVERLAP`` between neighbours."""
    if n <= 1:
        return [(0, side)]
    length = side / (n - (n - 1) * TILE_OVERLAP)
    starts = [round(i * length * (1 - TILE_OVERLAP)) for i in range(n)]
    return [(s, min(side, round(s + length)) - s) for s in starts[:-1]] + \
        [(side - round(length), round(length))]


def tile_grid(width: int, height: int, n_long: int) -> list[tuple[int, int, int, int]]:
    """Overlapping tiles (x, y, w, h): ``n_long`` along the long side, and along the short side
    as few as keep every tile no more elongated than ``TILE_MAX_ASPECT``."""
    long_side, short_side = max(width, height), min(width, height)
    along = _cuts(long_side, n_long)
    tile_long = along[0][1]
    n_short = 1
    while _cuts(short_side, n_short)[0][1] > TILE_MAX_ASPECT * tile_long and n_short < 64:
        n_short += 1
    across = _cuts(short_side, n_short)
    if width >= height:
        return [(x, y, w, h) for (y, h) in across for (x, w) in along]
    return [(x, y, w, h) for (y, h) in along for (x, w) in across]


def auto_tiles(width: int, height: int, input_size: int, native_input: int | None) -> int:
    """How many tiles ``tiles: auto`` uses along the long side (1: no tiling).

    The smallest number whose tiles are at most the detector's reach: 1.6x its fixed input, or 2x
    ``input_size`` for a detector that runs at any size; at most ``AUTO_MAX_TILES``.
    """
    long_side = max(width, height)
    reach = native_input * FIXED_INPUT_REACH if native_input else input_size * VARIABLE_INPUT_REACH
    if long_side <= reach:
        return 1
    # n tiles with 50 % overlap are 2 L / (n + 1) long
    n = math.ceil(2 * long_side / reach - 1)
    return max(2, min(AUTO_MAX_TILES, n))


def view_scale(w: int, h: int, input_size: int, upscale: UpscaleSpec, native_input: int | None) -> float:
    """The factor a view is resized by: down to ``input_size`` on its long side, or up for small
    views of a detector that runs at any size (``upscale``: a number is the largest enlargement,
    ``auto`` is ``AUTO_UPSCALE_MAX``), never beyond ``input_size``. A fixed-input detector
    (SSDLite) is never upscaled: its network resizes every view to its input anyway."""
    long_side = max(w, h)
    if long_side >= input_size:
        return input_size / long_side
    if upscale == "off" or native_input:
        return 1.0
    most = AUTO_UPSCALE_MAX if upscale == "auto" else float(upscale)
    return max(1.0, min(most, input_size / long_side))


def plan_views(width: int, height: int, input_size: int, tiles: TileSpec = "auto",
               upscale: UpscaleSpec = "auto", native_input: int | None = None) -> list[View]:
    """What ``Detector.detect`` looks at in a ``width`` x ``height`` frame: the whole frame, then
    the tiles (none with ``tiles: off``, or when the frame fits the detector's reach)."""
    n = 1 if tiles == "off" else auto_tiles(width, height, input_size, native_input) \
        if tiles == "auto" else int(tiles)
    views = [View(0, 0, width, height, view_scale(width, height, input_size, upscale, native_input),
                  False)]
    if n > 1:
        views += [View(x, y, w, h, view_scale(w, h, input_size, upscale, native_input), True)
                  for x, y, w, h in tile_grid(width, height, n)]
    return views


def drop_cut_boxes(dets: Detections, view: View, width: int, height: int) -> Detections:
    """A tile's boxes minus those that touch one of its inner edges (objects the tile cuts)."""
    if not view.tile or len(dets) == 0:
        return dets
    b = dets.boxes  # in the tile's own pixels
    mx, my = EDGE_MARGIN * view.w, EDGE_MARGIN * view.h
    cut = (((b[:, 0] <= mx) & (view.x > 0))
           | ((b[:, 1] <= my) & (view.y > 0))
           | ((b[:, 0] + b[:, 2] >= view.w - mx) & (view.x + view.w < width))
           | ((b[:, 1] + b[:, 3] >= view.h - my) & (view.y + view.h < height)))
    return dets[~cut]


def resize_by(image: np.ndarray, scale: float) -> np.ndarray:
    """``image`` resized by ``scale``: INTER_AREA to shrink (it averages pixels, so small faces
    survive), INTER_CUBIC to enlarge."""
    if scale == 1.0:
        return image
    h, w = image.shape[:2]
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC)


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
    native_input: ClassVar[int | None] = None
    """Long side of the fixed input the network resizes everything to (SSDLite: 300), None for a
    network that runs at any size (YuNet): decides what ``tiles``/``upscale: auto`` do."""
    merge_iou: ClassVar[float] = MERGE_IOU
    """IoU above which boxes of a frame's views are merged into one (NMS over the views)."""

    def __init__(self, backend: str, weights_id: str, runtime: str,
                 input_size: int = DEFAULT_INPUT_SIZE, tiles: TileSpec = "auto",
                 upscale: UpscaleSpec = "auto") -> None:
        """``weights_id`` names the exact weights (a sha256 prefix), ``runtime`` the library
        that runs them (``opencv-5.0.0``): both go into ``version``. ``tiles`` and ``upscale``:
        see ``plan_views``."""
        if input_size < 32:
            raise ValueError(f"input_size must be at least 32 pixels, got {input_size}")
        if not (tiles in ("auto", "off") or (isinstance(tiles, int) and 1 <= tiles <= 16)):
            raise ValueError(f"tiles must be auto, off or a number of tiles 1-16, got {tiles!r}")
        if not (upscale in ("auto", "off") or (isinstance(upscale, (int, float)) and 1 <= upscale <= 8)):
            raise ValueError(f"upscale must be auto, off or a factor 1-8, got {upscale!r}")
        self.backend = backend
        self.input_size = input_size
        self.tiles = tiles
        self.upscale = upscale
        self._weights_id = weights_id
        self._runtime = runtime

    @property
    def version(self) -> str:
        """Identifies everything that shapes the output; resume fingerprints include it, so a
        change of weights, backend, library, input size, tiling or code redoes detection."""
        return "/".join([self.name, self.backend, self._weights_id, self._runtime,
                         f"in{self.input_size}", f"tiles-{self.tiles}", f"up-{self.upscale}",
                         f"code{self.code_version}"])

    def views(self, width: int, height: int) -> list[View]:
        """What ``detect`` looks at in a frame of this size (see ``plan_views``)."""
        return plan_views(width, height, self.input_size, self.tiles, self.upscale, self.native_input)

    def detect(self, frame_bgr: np.ndarray) -> Detections:
        """All candidates (score >= ``CANDIDATE_MIN_SCORE``) in ``frame_bgr``'s pixels.

        Each view (the whole frame, then any tiles) is resized by its scale and detected on; boxes
        are mapped back to the frame, boxes cut by a tile edge dropped, and the views' boxes
        merged by NMS. With one view this is exactly: resize, detect, map back.
        """
        if frame_bgr.ndim != 3 or frame_bgr.shape[2] != 3:
            raise ValueError(f"expected an H x W x 3 BGR frame, got shape {frame_bgr.shape}")
        height, width = frame_bgr.shape[:2]
        views = self.views(width, height)
        parts = []
        for v in views:
            region = frame_bgr[v.y:v.y + v.h, v.x:v.x + v.w]
            small = resize_by(region, v.scale)
            found = self._detect(np.ascontiguousarray(small))
            back = max(v.w, v.h) / max(small.shape[:2])  # exact on the long side, as before
            found = drop_cut_boxes(found.scaled(back), v, width, height)
            parts.append(found.shifted(v.x, v.y) if v.tile else found)
        found = parts[0] if len(parts) == 1 else nms(Detections.concat(parts), self.merge_iou)
        return clip_to_frame(found, width, height)

    @abstractmethod
    def _detect(self, small_bgr: np.ndarray) -> Detections:
        """Detections in ``small_bgr``'s pixels, scores in [0, 1]."""

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.version}>"
