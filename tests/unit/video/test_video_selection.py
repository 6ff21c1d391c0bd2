"""Unit tests of the pure frame selection (pipeline.video.selection): frame times in, kept
frames out, no video decoded."""
from __future__ import annotations

import numpy as np
import pytest

from pipeline.video.plan import Range, SamplePlan
from pipeline.video.selection import (Scenes, Span, Targets, last_end_ms, make_selector,
                                      measured_duration_ms, share, slot_of, spans)


def kept(selector: Targets, times: list[int], slot: int = 0) -> list[int]:
    return [t for t in times if selector.keep(t, slot, None)]


def test_targets_keep_the_first_frame_at_or_after_each_target() -> None:
    every_500 = Targets([(0, 500.0, None)])
    assert kept(every_500, list(range(0, 2000, 40))) == [0, 520, 1000, 1520]


def test_targets_give_a_frame_once_when_several_targets_fall_before_it() -> None:
    # A 1.2 s gap (variable frame rate) covers the targets 500 and 1000: one frame for both.
    every_500 = Targets([(0, 500.0, None)])
    assert kept(every_500, [0, 40, 1240, 1280, 1520]) == [0, 1240, 1520]


def test_targets_stop_at_their_limit_and_start_at_their_span() -> None:
    three = Targets([(1000, 400.0, 3)])
    assert kept(three, list(range(0, 5000, 100))) == [1000, 1400, 1800]


def test_spans_place_a_time_in_the_first_range_that_contains_it() -> None:
    ranges = (Range(1.0, 3.0), Range(2.0, None))
    found = spans(ranges)
    assert found == [Span(0, 1000, 3000), Span(1, 2000, None)]
    assert [slot_of(t, found) for t in (999, 1000, 2500, 3000)] == [None, 0, 0, 1]
    assert last_end_ms(found) is None  # one range is open: decode to the end
    assert last_end_ms(spans((Range(0, 1.5), Range(4.0, 6.0)))) == 6000
    assert spans(()) == [Span(-1, 0, None)]


@pytest.mark.parametrize("count, lengths, expected", [
    (10, [1.0, 1.0], [5, 5]),
    (10, [1.0, 2.0], [3, 7]),   # 3.33 / 6.67: the larger remainder takes the spare one
    (3, [1.0, 1.0, 1.0, 1.0], [1, 1, 1, 0]),
    (5, [0.0, 0.0], [0, 0]),
])
def test_share_splits_a_count_in_proportion_and_adds_up(count: int, lengths: list[float],
                                                        expected: list[int]) -> None:
    shares = share(count, lengths)
    assert shares == expected
    assert sum(shares) == (count if sum(lengths) > 0 else 0)


def test_count_mode_spreads_its_targets_over_the_duration() -> None:
    plan = SamplePlan(mode="count", count=4)
    selector = make_selector(plan, spans(()), lambda: 2000.0)
    assert isinstance(selector, Targets)
    assert kept(selector, list(range(0, 2000, 40))) == [0, 520, 1000, 1520]


def test_only_count_mode_asks_for_the_duration() -> None:
    def no_duration() -> float:
        raise AssertionError("the duration was not needed")

    assert isinstance(make_selector(SamplePlan(every_s=0.5), spans(()), no_duration), Targets)
    assert isinstance(make_selector(SamplePlan(mode="scene"), spans(()), no_duration), Scenes)


def test_measured_duration_is_the_last_frame_plus_one_and_stops_at_the_ranges_end() -> None:
    assert measured_duration_ms([0.0, 40.0, 80.0], None, 40.0) == 120.0
    assert measured_duration_ms([0.0, 0.0, 0.0], None, 40.0) == 120.0  # no timestamps: estimated
    assert measured_duration_ms((40.0 * i for i in range(1000)), 400, 40.0) == 440.0
    assert measured_duration_ms([], None, 40.0) == 0.0


def test_scenes_keep_each_range_start_and_the_frame_after_a_cut() -> None:
    dark = np.zeros((36, 64, 3), np.uint8)
    light = np.full((36, 64, 3), 200, np.uint8)
    scenes = Scenes(threshold=27.0, min_gap_ms=500.0)
    frames = [(0, dark), (40, dark), (600, light), (640, light), (700, dark), (1300, dark)]
    assert [t for t, image in frames if scenes.keep(t, 0, image)] == [0, 600]
    # The cut back to dark at 700 ms is within the minimum gap after 600 ms: not kept.
    assert scenes.keep(2000, 1, dark)  # a new range starts with a sample
