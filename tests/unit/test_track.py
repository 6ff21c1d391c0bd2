"""Tracks across sampled frames (pipeline/track.py) and detect.every's frame choice (over whole
clips and in a run: tests/e2e/test_track.py)."""
from __future__ import annotations

import numpy as np
import pytest

from pipeline.core.detections import Detections
from pipeline.stages.crop import drop_unconfirmed
from pipeline.algo.track import TrackParams, interpolate, track, track_hits


def frame(*boxes, cls=0) -> Detections:
    return Detections(np.array(boxes, dtype=np.float32).reshape(-1, 4), np.full(len(boxes), 0.9),
                      np.full(len(boxes), cls))


def ids(tracked: list[Detections]) -> list[list[int]]:
    return [d.track_id.tolist() for d in tracked]


def test_track_ids_ride_along_in_detections():
    dets = frame([0, 0, 10, 10], [20, 0, 10, 10]).with_track_ids(np.array([7, 3]))
    row = dets.to_json()
    assert row["track_id"] == [7, 3] and Detections.from_json(row).track_id.tolist() == [7, 3]
    del row["track_id"]  # a detections row written before tracking existed
    assert Detections.from_json(row).track_id.tolist() == [-1, -1]
    assert dets[1].track_id.tolist() == [3] and dets.filtered(max_count=1).track_id.tolist() == [7]
    assert dets.scaled(2).track_id.tolist() == [7, 3] and dets.shifted(5, 5).boxes[0, 0] == 5
    both = Detections.concat([dets, frame([1, 1, 2, 2])])
    assert both.track_id.tolist() == [7, 3, -1] and Detections.concat([]).boxes.shape == (0, 4)


def test_two_walkers_keep_their_ids_and_a_newcomer_gets_a_new_one():
    seq = [frame([0, 0, 20, 40], [100, 0, 20, 40]),
           frame([104, 0, 20, 40], [4, 0, 20, 40]),  # order of detections changes
           frame([8, 0, 20, 40], [108, 0, 20, 40], [300, 0, 20, 40])]
    assert ids(track(seq)) == [[0, 1], [1, 0], [0, 1, 2]]


def test_velocity_carries_a_track_through_a_gap_and_tracks_expire():
    # moving 15 px a frame (IoU with the last box drops to 0 after 2 frames), unseen for 2 frames
    seq = [frame([0, 0, 20, 20]), frame([15, 0, 20, 20]), Detections.empty(), Detections.empty(),
           frame([60, 0, 20, 20])]
    assert ids(track(seq))[-1] == [0]
    assert ids(track(seq, TrackParams(max_missed=1)))[-1] == [1]  # gap too long: a new track


def walker(x: float) -> list[float]:
    return [x, 100, 40, 100]  # a person box, 0.4 wide for 1 tall


def test_a_walker_hidden_for_four_frames_keeps_one_track():
    # 8 px a frame behind a pillar for 4 frames (a 32 px jump, IoU 0.33 with the last box)
    seq = [frame(walker(8 * t)) for t in range(5)] + [Detections.empty()] * 4 + \
        [frame(walker(8 * t)) for t in range(9, 14)]
    assert {t for d in track(seq) for t in d.track_id.tolist()} == {0}
    assert ids(track(seq, TrackParams(max_missed=3)))[-1] == [1]  # hidden longer than allowed


def test_a_one_frame_false_box_gives_no_crop_with_min_track_hits():
    seq = [frame(walker(8 * t)) for t in range(5)]
    seq[2] = frame(walker(16), [400, 50, 30, 80])  # a false box, one frame only
    det_rows = [{**d.to_json(), "detected": True} for d in track(seq)]
    det_rows.append({**frame(walker(40), walker(300)).with_track_ids(np.array([0, 2])).to_json(),
                     "detected": False})  # interpolated boxes confirm nothing
    hits = track_hits(det_rows)
    assert hits == {0: 5, 1: 1}
    rows = [{"track_id": t, "status": "kept", "drop_reason": None}
            for row in det_rows for t in row["track_id"]]
    drop_unconfirmed(rows, hits, 2)
    assert [(r["track_id"], r["drop_reason"]) for r in rows if r["status"] == "dropped"] == \
        [(1, "unconfirmed"), (2, "unconfirmed")]
    single = [{"track_id": 1, "status": "kept", "drop_reason": None}]
    drop_unconfirmed(single, hits, 1)  # 1, the default: every crop counts
    assert single[0]["status"] == "kept"


def test_slow_sampling_falls_back_to_the_nearest_face_of_the_same_size_and_class():
    seq = [frame([100, 100, 40, 40]), frame([150, 100, 40, 40])]  # moved 1.25 face widths
    assert ids(track(seq)) == [[0], [0]]
    assert ids(track([frame([100, 100, 40, 40]), frame([150, 100, 100, 100])])) == [[0], [1]]  # size
    assert ids(track([frame([100, 100, 40, 40]), frame([300, 100, 40, 40])])) == [[0], [1]]  # far
    assert ids(track([frame([0, 0, 40, 40]), frame([0, 0, 40, 40], cls=1)])) == [[0], [1]]  # class


def test_interpolate_follows_tracks_between_detected_frames():
    a = frame([0, 0, 10, 10], [50, 50, 10, 10]).with_track_ids(np.array([0, 1]))
    b = Detections([[10, 0, 20, 10]], [0.6], [0], track_id=[0])
    out = interpolate({0: a, 4: b}, [0.0, 0.25, 0.5, 0.75, 1.0])
    assert len(out) == 5 and out[0] is a and out[4] is b
    np.testing.assert_allclose(out[2].boxes, [[5, 0, 15, 10]])  # track 1 ends: not extrapolated
    assert out[2].track_id.tolist() == [0] and out[2].scores.tolist() == pytest.approx([0.6])
    assert len(interpolate({1: a}, [0.0, 1.0, 2.0])[0]) == 0  # nothing before the first keyframe


def test_tracks_never_span_two_segments_and_every_detects_each_segments_ends():
    from pipeline.config.schema import Detect
    from pipeline.stages.detect import _tracked, detected_frames, runs

    frames = [{"t_ms": i * 100, "segment": s} for i, s in enumerate([0, 0, 0, 0, 1, 1])]
    assert runs(frames) == [range(0, 4), range(4, 6)]
    assert detected_frames(frames, 2) == [0, 2, 3, 4, 5]
    assert detected_frames(frames, 1) == list(range(6))
    same = frame([10, 10, 20, 20])
    out, detected = _tracked(frames, [same] * 5, Detect(every=2))
    assert detected == {0, 2, 3, 4, 5}
    assert ids(out) == [[0], [0], [0], [0], [1], [1]]  # frame 1 followed, a new track after the cut
