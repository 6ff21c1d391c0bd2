"""Small subjects: tiles merged by NMS and upscaled small frames (detectors/base.py); measured on
real footage with ground truth in tests/e2e/test_tiling.py."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from pipeline.core.detections import Detections, nms
from pipeline.detectors.base import (Detector, View, auto_tiles, drop_cut_boxes, plan_views,
                                     tile_grid, view_scale)


# --- the plan: what a detector looks at ----------------------------------------------------------

def test_tiles_cover_the_frame_with_half_overlap():
    for width, height, n in [(640, 480, 2), (1280, 720, 3), (360, 640, 2), (1920, 1080, 5)]:
        tiles = tile_grid(width, height, n)
        assert len(tiles) >= n
        covered = np.zeros((height, width), bool)
        for x, y, w, h in tiles:
            assert 0 <= x and 0 <= y and x + w <= width and y + h <= height
            covered[y:y + h, x:x + w] = True
        assert covered.all(), (width, height, n)
        along = sorted({t[0] for t in tiles}) if width >= height else sorted({t[1] for t in tiles})
        assert len(along) == n
        step, size = along[1] - along[0], (tiles[0][2] if width >= height else tiles[0][3])
        assert abs(step - size / 2) <= 1  # neighbours share half a tile
        for _, _, w, h in tiles:  # rows added until no tile is more elongated than 1.25
            assert max(w, h) / min(w, h) <= 1.25 + 1e-6 or min(width, height) == min(w, h)


def test_auto_chooses_from_frame_size_and_detector_input():
    # SSDLite (fixed 300x300 input): tile above 480 px, at most 3 along the long side
    assert auto_tiles(480, 360, 640, 300) == 1
    assert auto_tiles(640, 480, 640, 300) == 2
    assert auto_tiles(1280, 720, 640, 300) == 3
    # YuNet (any size): only when the frame is shrunk more than 2x
    assert auto_tiles(1280, 720, 640, None) == 1
    assert auto_tiles(1920, 1080, 640, None) == 2
    # upscaling: small frames for any-size detectors only, up to 2x, never past input_size
    assert view_scale(320, 240, 640, "auto", None) == 2.0
    assert view_scale(480, 360, 640, "auto", None) == pytest.approx(640 / 480)
    assert view_scale(320, 240, 640, "auto", 300) == 1.0
    assert view_scale(320, 240, 640, "off", None) == 1.0
    assert view_scale(320, 240, 640, 1.5, None) == 1.5
    assert view_scale(320, 240, 640, 1.5, 300) == 1.0
    assert view_scale(1280, 720, 640, "auto", None) == 0.5
    views = plan_views(640, 480, 640, "auto", "auto", 300)
    assert [v.tile for v in views] == [False, True, True] and views[0].w == 640
    assert plan_views(640, 480, 640, "off", "auto", 300) == [View(0, 0, 640, 480, 1.0, False)]
    assert len(plan_views(640, 480, 640, 4, "off", None)) == 1 + 4 * 2


class Stamp(Detector):
    """Finds every white square in what it is shown (a stand-in network, any input size)."""

    name = "stamp"
    classes = ("face",)

    def __init__(self, **kw) -> None:
        super().__init__("test", "none", "none", **kw)
        self.shapes: list[tuple[int, ...]] = []

    def _detect(self, small_bgr: np.ndarray) -> Detections:
        self.shapes.append(small_bgr.shape)
        mask = (small_bgr[..., 0] > 128).astype(np.uint8)
        n, _, stats, _ = cv2.connectedComponentsWithStats(mask)
        boxes = stats[1:, :4].astype(np.float32)
        return Detections(boxes, np.full(len(boxes), 0.9), np.zeros(len(boxes)))


def test_tiles_map_back_drop_cut_boxes_and_merge():
    frame = np.zeros((480, 1280, 3), np.uint8)
    frame[100:140, 300:340] = 255  # whole in the full view and in tile 0 (and cut by none)
    frame[200:260, 610:670] = 255  # across the cut between tiles 0 and 1
    detector = Stamp(input_size=1280, tiles=2, upscale="off")
    found = detector.detect(frame)
    assert len(detector.shapes) == 3  # full frame + 2 tiles
    assert sorted(found.boxes.tolist()) == [[300, 100, 40, 40], [610, 200, 60, 60]]
    # a box that touches the inner edge of a tile is dropped, one at the frame edge is not
    view = View(0, 0, 640, 480, 1.0, True)
    edge = Detections([[600, 10, 40, 40], [0, 10, 40, 40]], [0.9, 0.9], [0, 0])
    assert drop_cut_boxes(edge, view, 1280, 480).boxes.tolist() == [[0, 10, 40, 40]]


def test_upscaled_views_map_back_exactly():
    frame = np.zeros((120, 160, 3), np.uint8)
    frame[30:50, 40:60] = 255
    detector = Stamp(input_size=640, upscale="auto")
    found = detector.detect(frame)
    assert detector.shapes == [(240, 320, 3)]  # 2x, the auto limit
    np.testing.assert_allclose(found.boxes, [[40, 30, 20, 20]], atol=1)


def test_nms_keeps_the_best_box_per_object_and_class():
    dets = Detections([[0, 0, 100, 100], [5, 5, 100, 100], [300, 0, 50, 50], [2, 2, 100, 100]],
                      [0.6, 0.9, 0.5, 0.8], [0, 0, 0, 1])
    kept = nms(dets, 0.5)
    assert kept.boxes.tolist() == [[5, 5, 100, 100], [2, 2, 100, 100], [300, 0, 50, 50]]
    assert kept.class_id.tolist() == [0, 1, 0]


# --- measured on real footage -------------------------------------------------------------------
