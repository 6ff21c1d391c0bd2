"""Tracks across sampled frames (pipeline/track.py) and detect.every's frame choice (over whole
clips and in a run: tests/e2e/test_track.py)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pipeline.core.detections import Detections
from pipeline.stages.crop import drop_unconfirmed
from pipeline.algo.appearance import Looks, colour_distance, torso_histogram
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


def test_two_walkers_crossing_keep_their_ids_when_one_is_hidden_at_the_crossing():
    # A walks right, B left, 6 px a frame each; A is hidden behind B for the 3 frames around the
    # crossing and comes back on the far side of B: where its constant velocity puts it
    seq = [frame(walker(6 * t), walker(120 - 6 * t)) if not 8 <= t <= 10 else frame(walker(120 - 6 * t))
           for t in range(16)]
    tracked = track(seq)
    assert ids(tracked)[7] == [0, 1] and ids(tracked)[9] == [1]
    assert all(d.track_id.tolist() == [0, 1] for d in tracked[11:])  # not swapped


def test_a_box_over_two_crossing_walkers_goes_to_the_one_in_front():
    # A (further away: feet higher in the frame) walks left, B (nearer) right, 15 px a frame; as
    # they cross, the detector finds one box over both for two frames, overlapping A's predicted
    # box a little more than B's. B is in front, so B is the one seen: A waits behind B
    def far(x: float) -> list[float]:
        return [x, 100, 40, 100]

    def near(x: float) -> list[float]:
        return [x, 110, 44, 110]
    seq = [frame(far(220 - 15 * t), near(100 + 15 * t)) for t in range(4)]
    seq += [frame([155, 95, 50, 110]), frame([145, 95, 65, 110])]
    seq += [frame(far(220 - 15 * t), near(100 + 15 * t)) for t in range(6, 10)]
    assert ids(track(seq)) == [[0, 1]] * 4 + [[1], [1]] + [[0, 1]] * 4


RED, BLUE = (0, 0, 200), (200, 0, 0)  # BGR


def street(*walkers: tuple[list[float], tuple[int, int, int]]) -> np.ndarray:
    """A grey frame with each walker's box painted in their colour."""
    image = np.full((320, 480, 3), 128, dtype=np.uint8)
    for (x, y, w, h), colour in walkers:
        image[int(y):int(y + h), int(x):int(x + w)] = colour
    return image


def test_a_walker_hidden_for_20_frames_keeps_their_track_when_dressed_alike():
    # 25 frames a second, 4 px a frame; hidden for 20 frames (0.8 s, longer than max_missed)
    shown = [t for t in range(30) if not 5 <= t < 25]
    images = [street((walker(4 * t), RED)) if t in shown else street() for t in range(30)]
    seq = [frame(walker(4 * t)) if t in shown else Detections.empty() for t in range(30)]
    times = [t / 25 for t in range(30)]

    def look(t: int, box: np.ndarray) -> np.ndarray:
        return torso_histogram(images[t], box)
    assert {t for d in track(seq, TrackParams(lost_s=1.2), times, look) for t in d.track_id.tolist()} == {0}
    assert ids(track(seq, TrackParams(), times, look))[-1] == [1]  # lost_s 0: a new track
    assert ids(track(seq, TrackParams(lost_s=0.6), times, look))[-1] == [1]  # hidden too long
    # someone else, dressed differently, where the walker was heading: a track of their own
    images[25:] = [street((walker(4 * t), BLUE)) for t in range(25, 30)]
    assert ids(track(seq, TrackParams(lost_s=1.2), times, look))[-1] == [1]
    with pytest.raises(ValueError, match="times and images"):
        track(seq, TrackParams(lost_s=1.2), times)


def test_colours_tell_two_walkers_apart_where_motion_cannot():
    # red was seen once (no velocity), blue walked beside them for 8 frames; both hidden, red
    # comes back nearer to where blue was heading than to where red was last seen
    def scene(t: int) -> list[tuple[list[float], tuple[int, int, int]]]:
        return [(walker(4 * t), RED)] * (t == 0) + [(walker(60 + 4 * t), BLUE)] * (t < 8) + \
            [(walker(4 * t), RED)] * (t >= 24)
    images = [street(*scene(t)) for t in range(28)]
    seq = [frame(*[box for box, _ in scene(t)]) for t in range(28)]

    def look(t: int, box: np.ndarray) -> np.ndarray:
        return torso_histogram(images[t], box)
    tracked = track(seq, TrackParams(lost_s=1.2), [t / 25 for t in range(28)], look)
    assert ids(tracked)[0] == [0, 1] and ids(tracked)[-1] == [0]


def test_torso_colours_and_unreadable_frames(tmp_path):
    image = street((walker(0), RED), (walker(100), BLUE))
    red, blue = torso_histogram(image, np.array(walker(0))), torso_histogram(image, np.array(walker(100)))
    assert colour_distance(red, red) == pytest.approx(0, abs=1e-3) and colour_distance(red, blue) > 0.9
    outside = torso_histogram(image, np.array([1000, 1000, 40, 100]))
    assert outside.sum() == 0 and colour_distance(outside, outside) == 1.0  # nothing seen: no match
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8 not a whole jpeg")
    looks = Looks([tmp_path / "broken.jpg", tmp_path / "gone.jpg"])
    for position in (0, 1):
        with pytest.raises(OSError, match="cannot read frame .*(broken|gone).jpg"):
            looks(position, np.array(walker(0)))


def test_a_box_that_stalls_for_a_frame_does_not_send_the_track_astray():
    # a walker going left 8 px a frame; one box stays put (cut short by someone in front), then
    # the walker is hidden for 4 frames. Someone seen once, a little to the left, is nearer to
    # where the stalled box was than the walker is when they come back, but not nearer than
    # where the walker was heading: the track keeps its walker (the velocity learns half a step)
    seq = [frame(walker(300 - 8 * t)) for t in range(10)]
    seq.append(frame(walker(228), walker(142)))  # the stalled box, and the one seen once
    seq += [Detections.empty()] * 4 + [frame(walker(180))]
    assert ids(track(seq))[-1] == [0]


def test_a_track_seen_last_frame_is_matched_before_one_unseen_for_longer():
    # a face that stays put (with a little jitter), and one that walks left 10 px a frame, out of
    # sight after frame 4: its prediction for frame 9 lands exactly on the first face, which
    # must keep its own track (it was seen a frame ago; the other one five frames ago)
    def face(x: float) -> list[float]:
        return [x, 50, 30, 30]
    seq = [frame(face(100), face(190 - 10 * t)) for t in range(5)]
    seq += [frame(face(100))] * 3 + [frame(face(104)), frame(face(100))]
    assert ids(track(seq))[-1] == [0]


def test_weak_boxes_continue_a_track_but_start_none():
    weak = Detections(np.array([walker(16), walker(400)], dtype=np.float32), np.array([0.45, 0.45]),
                      np.zeros(2))
    seq = [frame(walker(0)), frame(walker(8)), weak, frame(walker(24))]
    tracked = track(seq, TrackParams(start_score=0.5))
    # the weak box where the walker was heading is kept in their track; the far one is dropped
    assert ids(tracked) == [[0], [0], [0], [0]]
    np.testing.assert_allclose(tracked[2].boxes, [walker(16)])
    alone = track([weak, weak], TrackParams(start_score=0.5))
    assert [len(d) for d in alone] == [0, 0]  # nothing followed: weak boxes are no one
    assert ids(track([weak], TrackParams()))[0] == [0, 1]  # start_score 0: every box counts


def test_a_weak_box_far_from_the_prediction_is_refused_even_when_the_track_waits():
    # the fallback by centre distance is for boxes that may start a track; a weak one must overlap
    seq = [frame(walker(8 * t)) for t in range(3)]
    seq.append(Detections(np.array([walker(16 + 70)], dtype=np.float32), np.array([0.45]), np.zeros(1)))
    assert len(track(seq, TrackParams(start_score=0.5))[-1]) == 0
    assert ids(track(seq))[-1] == [0]  # a strong box there continues the track by distance


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

    frames = [{"t_ms": i * 100, "segment": s, "file": f"{i}.jpg"} for i, s in enumerate([0, 0, 0, 0, 1, 1])]
    assert runs(frames) == [range(0, 4), range(4, 6)]
    assert detected_frames(frames, 2) == [0, 2, 3, 4, 5]
    assert detected_frames(frames, 1) == list(range(6))
    same = frame([10, 10, 20, 20])
    out, detected = _tracked(frames, [same] * 5, Detect(every=2), Path("frames"))
    assert detected == {0, 2, 3, 4, 5}
    assert ids(out) == [[0], [0], [0], [0], [1], [1]]  # frame 1 followed, a new track after the cut
