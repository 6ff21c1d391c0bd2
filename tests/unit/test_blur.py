"""The covering of bystanders' faces (pipeline/stages/blur.py): pixelation, pasting into a crop,
whose face is whose in a person crop."""
from __future__ import annotations

import numpy as np

from pipeline.stages.blur import BLOCKS, Patch, cover, own_faces, pixelate


def test_pixelate_covers_the_grown_box_with_blocks_big_enough_for_small_faces():
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 255, (400, 400, 3), dtype=np.uint8)
    small = pixelate(frame, (40, 40, 20, 20))
    assert (small.x, small.y, small.w, small.h) == (32, 32, 36, 36)  # 40 % more on each side
    assert len({tuple(c) for c in small.pixels.reshape(-1, 3)}) == 2 * 2  # blocks >= MIN_BLOCK px
    large = pixelate(frame, (100, 100, 100, 100))
    assert len({tuple(c) for c in large.pixels.reshape(-1, 3)}) == BLOCKS * BLOCKS
    assert pixelate(frame, (500, 500, 10, 10)) is None  # not in the frame


def test_cover_pastes_where_the_patch_meets_the_crop_and_never_over_the_subject():
    crop = np.zeros((50, 50, 3), np.uint8)  # cut from the frame at (100, 100)
    inside = Patch(110, 110, np.full((10, 10, 3), 200, np.uint8))
    half_out = Patch(140, 90, np.full((20, 20, 3), 100, np.uint8))  # reaches in from above right
    away = Patch(0, 0, np.full((10, 10, 3), 50, np.uint8))
    out, count = cover(crop, (100, 100), [inside, half_out, away])
    assert count == 2 and not crop.any()  # the crop given is not changed
    assert (out[10:20, 10:20] == 200).all() and (out[0:10, 40:50] == 100).all()
    assert out[30:, :40].max() == 0
    kept, count = cover(crop, (100, 100), [inside], keep=(112, 112, 4, 4))
    assert count == 1 and kept[12:16, 12:16].max() == 0 and (kept[10:12, 10:20] == 200).all()
    same, none = cover(crop, (100, 100), [away])
    assert none == 0 and same is crop


def test_a_face_belongs_to_the_person_whose_head_it_is():
    persons = np.array([[0, 0, 40, 100], [30, 0, 40, 100]], float)  # two overlapping people
    faces = np.array([[12, 4, 14, 14],    # the first one's head
                      [42, 4, 14, 14],    # the second one's head
                      [40, 60, 10, 10],   # low in both boxes: a third person's (a poster, a child)
                      [30, 30, 10, 10]])  # between them, further down: the nearer head wins
    assert own_faces(persons, faces) == {0: 0, 1: 1}
    assert own_faces(persons, np.zeros((0, 4))) == {}
