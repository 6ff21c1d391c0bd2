"""Dropped crops in a whole run: listed with their reason in the manifest and summary.json, left
out of dataset/."""
from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from pipeline.config.load import parse_config
from pipeline.runner.run import run
from helpers.support import DEMO, read_manifest


@pytest.fixture(scope="module")
def astronaut(tmp_path_factory) -> dict:
    tmp = tmp_path_factory.mktemp("quality")
    shutil.copy(DEMO / "astronaut_zoom.mp4", tmp / "astronaut_zoom.mp4")
    return {"name": "q", "output": str(tmp / "out"),
            "sources": [{"path": str(tmp / "astronaut_zoom.mp4"), "label": "astronaut"}],
            "sample": {"every": 0.5}}


@pytest.mark.slow  # a whole run of a demo video
def test_dropped_crops_are_listed_with_their_reason_and_left_out(astronaut):
    root = Path(astronaut["output"])
    run(parse_config(astronaut), progress=False, log=lambda _m: None)
    everything = read_manifest(root)
    assert len(everything) == 10 and {r["status"] for r in everything} == {"kept"}
    assert len({r["track_id"] for r in everything}) == 1 and everything[0]["track_id"] == "0"
    assert all(re.fullmatch(r"[0-9a-f]{16}", r["phash"]) and 0 < float(r["quality"]) <= 1
               for r in everything)
    sharpness = sorted(float(r["sharpness"]) for r in everything)
    threshold = (sharpness[4] + sharpness[5]) / 2

    cases = [({"min_sharpness": threshold}, "blurry", 5),
             ({"padding": 2.0, "max_outside": 0.3}, "outside", None),
             ({"min_size": 10_000}, "small", 10)]
    for crop, reason, expected in cases:
        report = run(parse_config({**astronaut, "crop": crop}), progress=False, log=lambda _m: None)
        assert report.outcomes[0].stages["detect"] == "skipped"
        rows = read_manifest(root)
        dropped = [r for r in rows if r["status"] == "dropped"]
        assert dropped and {r["drop_reason"] for r in dropped} == {reason}
        if expected is not None:
            assert len(dropped) == expected
        for r in dropped:
            assert r["file"] == "" and r["dataset_file"] == "" and r["quality"] == ""
        files = {str(p.relative_to(root)) for p in (root / "crops").rglob("*.jpg")}
        assert files == {r["file"] for r in rows if r["status"] == "kept"}
        dataset = {str(p.relative_to(root)) for p in (root / "dataset").rglob("*.jpg")}
        assert dataset == {r["dataset_file"] for r in rows if r["status"] == "kept"}
        summary = json.loads((root / "summary.json").read_text())
        assert summary["crops"]["dropped_by_reason"] == {reason: len(dropped)}
        assert summary["crops"]["kept"] == len(rows) - len(dropped)
        page = (root / "sheets" / "index.html").read_text()
        data = json.loads(re.search(r'<script type="application/json" id="data">(.*?)</script>',
                                    page, re.S).group(1))
        assert len(data["crops"]) == len(rows) - len(dropped)  # the page shows no dropped crop
        if reason == "blurry":  # what was kept is the sharper half
            assert min(float(r["sharpness"]) for r in rows if r["status"] == "kept") >= threshold
