"""Crop geometry by exact numbers on synthetic frames: padding, aspect, clamping, border, size."""
from __future__ import annotations

import numpy as np
import pytest

from pipeline.config.schema import Crop
from pipeline.core.detections import Detections
from pipeline.stages.crop import Region, crop_region, cut, output_size, select


def crop(**kw) -> Crop:
    return Crop.model_validate(kw)


def test_padding_then_aspect_grows_the_narrow_side():
    c = crop(padding=0.2, aspect=1.0)
    # box 50x100 -> padded 70x140 at (90, 80) -> widened to 140x140 about x = 125
    assert crop_region((100, 100, 50, 100), c, 640, 480) == Region(55, 80, 140, 140)


def test_per_side_padding():
    c = crop(padding={"left": 0.0, "right": 1.0, "top": 0.5, "bottom": 0.0}, aspect=None)
    assert crop_region((100, 100, 40, 20), c, 640, 480) == Region(100, 90, 80, 30)


def test_portrait_aspect_grows_height_never_squashes():
    c = crop(padding=0, aspect=0.75)
    region = crop_region((100, 100, 40, 40), c, 640, 480)
    assert region == Region(100, 93, 40, 53)
    assert region.w >= 40 and region.h >= 40


def test_clamp_shifts_into_the_frame_keeping_size():
    c = crop(padding=0.5, aspect=1.0, outside="clamp")
    assert crop_region((10, 10, 40, 40), c, 640, 480) == Region(0, 0, 80, 80)
    assert crop_region((600, 440, 40, 40), c, 640, 480) == Region(560, 400, 80, 80)


def test_clamp_shrinks_only_when_larger_than_the_frame():
    c = crop(padding=0.5, aspect=1.0, outside="clamp")
    # padded 120x80 -> square 120x120 about (50, 30) -> scaled by 0.5 to fit 60 rows
    assert crop_region((20, 10, 60, 40), c, 100, 60) == Region(20, 0, 60, 60)


def test_pad_keeps_the_region_and_fills_with_border_colour():
    c = crop(padding=0.5, aspect=1.0, outside="pad", border_color=[0, 0, 255])
    region = crop_region((10, 10, 40, 40), c, 640, 480)
    assert region == Region(-10, -10, 80, 80)
    frame = np.full((480, 640, 3), 200, np.uint8)
    pixels = cut(frame, region, (0, 0, 255))
    assert pixels.shape == (80, 80, 3)
    assert (pixels[:10, :, :] == [0, 0, 255]).all() and (pixels[:, :10, :] == [0, 0, 255]).all()
    assert (pixels[10:, 10:] == 200).all()


def test_cut_inside_is_the_exact_pixels():
    frame = np.arange(48 * 64 * 3, dtype=np.uint32).reshape(48, 64, 3).astype(np.uint8)
    assert np.array_equal(cut(frame, Region(5, 6, 10, 12), (0, 0, 0)), frame[6:18, 5:15])


@pytest.mark.parametrize("size,aspect,region,expected", [
    (224, 1.0, Region(0, 0, 140, 140), (224, 224)),
    (224, 0.75, Region(0, 0, 40, 53), (168, 224)),
    (224, 2.0, Region(0, 0, 100, 50), (224, 112)),
    (None, 1.0, Region(0, 0, 33, 33), (33, 33)),
    (100, None, Region(0, 0, 50, 200), (25, 100)),
])
def test_output_size(size, aspect, region, expected):
    assert output_size(region, size, aspect) == expected


def test_policies():
    dets = Detections([[0, 0, 10, 10], [0, 0, 50, 50], [0, 0, 20, 20]], [0.9, 0.8, 0.7], [0, 0, 0])
    assert select(dets, crop(policy="all")).tolist() == [0, 1, 2]
    assert select(dets, crop(policy="largest")).tolist() == [1]
    assert select(dets, crop(policy="top-k", top_k=2)).tolist() == [0, 1]
    assert select(Detections.empty(), crop(policy="largest")).tolist() == []


def test_detections_filter_and_round_trip():
    dets = Detections([[0, 0, 10, 10], [5, 5, 60, 60], [1, 1, 50, 50]], [0.95, 0.5, 0.8], [0, 0, 1],
                      np.arange(30, dtype=np.float32).reshape(3, 5, 2))
    kept = dets.filtered(min_score=0.6, min_size=20, max_count=5)
    assert kept.boxes.tolist() == [[1, 1, 50, 50]] and kept.class_id.tolist() == [1]
    back = Detections.from_json(dets.to_json())
    assert np.allclose(back.boxes, dets.boxes) and np.allclose(back.landmarks, dets.landmarks)
    none = Detections([[0, 0, 1, 1]], [0.5], [0])
    assert np.isnan(Detections.from_json(none.to_json()).landmarks).all()
