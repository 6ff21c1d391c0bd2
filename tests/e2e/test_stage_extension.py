"""A stage that reports counts is one module (here: this one) and an entry in ``STAGES``: a
real run of the demo videos through the library API shows its counts in ``summary.json``, in
``status`` and in the run log, and ``plan`` times its work per frame, with no other module told
about it."""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

import pytest

import pipeline
from pipeline import stages
from pipeline.cli.render import print_status
from pipeline.config.load import parse_config
from pipeline.runner.plan import plan_lines
from pipeline.stages import FRAMES, Context, Produced, Result, Results, Stage
from pipeline.stages.crop import CropResult
from pipeline.state.markers import State, fingerprint
from helpers.demo import make_config

pytestmark = pytest.mark.slow  # a whole run


@dataclass(frozen=True)
class FilesResult(Result):
    """How many crop files the source has on disk."""

    counted = ("crop_files",)

    crop_files: int

    def to_json(self) -> dict[str, Any]:
        return {"crop_files": self.crop_files}

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> FilesResult:
        return cls(raw["crop_files"])


class FilesStage(Stage[FilesResult]):
    name, version, result, work = "files", "1", FilesResult, FRAMES

    def fingerprint(self, ctx: Context, upstream: str) -> str:
        return fingerprint(self.version, upstream)

    def run(self, ctx: Context, inputs: Results) -> Produced[FilesResult]:
        assert inputs[CropResult].crops >= 0  # an earlier stage's result, looked up by its type
        files = sorted((ctx.root / "crops" / ctx.video.sid).glob("*.jpg"))
        out = ctx.root / "files" / f"{ctx.video.sid}.txt"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text("".join(f"{f.name}\n" for f in files))
        return [str(out.relative_to(ctx.root))], FilesResult(len(files))


def test_a_new_stage_reports_its_counts_everywhere(tmp_path, monkeypatch, caplog, capsys):
    monkeypatch.setattr(stages, "STAGES", (*stages.STAGES, FilesStage()))
    config = parse_config(make_config(tmp_path))  # one worker: the units run in this process
    with caplog.at_level(logging.INFO, logger="pipeline.run"):
        report = pipeline.run(config, progress=False, log=lambda _m: None)
    assert report.exit_code == 0
    on_disk = len(list((tmp_path / "out" / "crops").glob("*/*.jpg")))
    assert on_disk > 0

    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["crop_files"] == on_disk
    assert summary["stages"]["files"] == {"ran": 3, "skipped": 0, "failed": 0}

    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("files ")]
    assert len(lines) == 3 and all(" ran " in line and "crop_files=" in line for line in lines)
    assert sum(int(line.rsplit("crop_files=", 1)[1]) for line in lines) == on_disk

    assert pipeline.status(config).counts["files"] == {"crop_files": on_disk}
    print_status(pipeline.status(config))
    row = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("files "))
    assert row.split() == ["files", "3", "0", "0", "crop_files:", str(on_disk)]

    again = pipeline.run(config, progress=False, log=lambda _m: None)  # resumes: nothing to redo
    assert all(how == "skipped" for o in again.outcomes for how in o.stages.values())
    assert json.loads((tmp_path / "out" / "summary.json").read_text())["crop_files"] == on_disk

    # plan's seconds a frame: what every stage measured in frames recorded, this one's included
    state, sids = State(tmp_path / "out"), [o.sid for o in report.outcomes]
    seconds = sum(state.read(s.name, sid).seconds for s in stages.STAGES if s.work == FRAMES
                  for sid in sids)
    frames = sum(state.read("sample", sid).result["frames"] for sid in sids)
    plan = pipeline.plan(config, measure=False)
    assert plan.estimate.seconds_per_frame == pytest.approx(seconds / frames)
    assert any(line.startswith("time: about 0.0 s for sample + detect + crop + files (")
               for line in plan_lines(plan, config))
