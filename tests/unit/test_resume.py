"""The resume rule on its own: real markers and outputs in a temporary output folder."""
from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.state.resume import plan_unit
from pipeline.state.markers import Marker, State


@pytest.fixture
def done(tmp_path: Path) -> State:
    """A finished 'sample' unit of source 'v' with fingerprint 'fp1' and one output."""
    state = State(tmp_path)
    out = tmp_path / "frames" / "v" / "frames.jsonl"
    out.parent.mkdir(parents=True)
    out.write_text('{"t_ms": 0}\n' * 100)
    state.finish("sample", "v", Marker("fp1", ["frames/v/frames.jsonl"], {"frames": 100}))
    return state


def test_a_matching_marker_with_intact_outputs_is_skipped(done: State) -> None:
    decision = plan_unit(done, "sample", "v", "fp1")
    assert decision.action == "skip"
    assert decision.marker is not None and decision.marker.result == {"frames": 100}


@pytest.mark.parametrize("damage", ["delete", "truncate", "overwrite"])
def test_damaged_outputs_redo_the_unit(done: State, damage: str) -> None:
    out = done.root / "frames" / "v" / "frames.jsonl"
    if damage == "delete":
        out.unlink()
    elif damage == "truncate":
        out.write_text('{"t_ms": 0}\n' * 99)
    else:  # same size, other bytes
        out.write_text(out.read_text().replace("0", "1"))
    assert plan_unit(done, "sample", "v", "fp1").action == "run"


def test_another_fingerprint_or_no_marker_runs(done: State) -> None:
    assert plan_unit(done, "sample", "v", "fp2").action == "run"
    assert plan_unit(done, "detect", "v", "fp1").action == "run"
    assert plan_unit(done, "sample", "w", "fp1").action == "run"


def test_forced_or_after_a_redone_stage_runs(done: State) -> None:
    assert plan_unit(done, "sample", "v", "fp1", forced=True).action == "run"
    assert plan_unit(done, "sample", "v", "fp1", upstream_ran=True).action == "run"


def test_a_recorded_failure_is_reported_for_its_fingerprint_only(tmp_path: Path) -> None:
    state = State(tmp_path)
    state.fail("download", "v", {"class": "video-unavailable", "message": "gone", "fingerprint": "fp1"})
    decision = plan_unit(state, "download", "v", "fp1")
    assert decision.action == "failed" and decision.error is not None
    assert decision.error["class"] == "video-unavailable"
    assert plan_unit(state, "download", "v", "fp1", retry_failed=True).action == "run"
    assert plan_unit(state, "download", "v", "fp1", forced=True).action == "run"
    assert plan_unit(state, "download", "v", "fp1", upstream_ran=True).action == "run"
    assert plan_unit(state, "download", "v", "fp2").action == "run"  # the config changed


def test_an_unknown_fingerprint_matches_only_a_failure_recorded_without_one(tmp_path: Path) -> None:
    """A fingerprint that could not be computed (a local file gone, a detector that cannot
    load) is recorded as ''; status reports that unit failed while it still cannot be computed."""
    state = State(tmp_path)
    assert plan_unit(state, "detect", "v", None).action == "run"
    state.fail("detect", "v", {"class": "ModelError", "message": "no weights", "fingerprint": ""})
    assert plan_unit(state, "detect", "v", None).action == "failed"
    assert plan_unit(state, "detect", "v", "fp1").action == "run"  # computable again: retried


def test_a_finished_unit_is_never_skipped_without_a_fingerprint(done: State) -> None:
    assert plan_unit(done, "sample", "v", None).action == "run"
