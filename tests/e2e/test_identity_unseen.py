"""Identity with its defaults on clips nobody tuned it on (the three labelled clips of
``identity/``) beside the face clips, and on the demo's two videos of one person, through the CLI:
no cluster holds two labelled people, a face under ``identity.min_face`` gets no cluster but a
reason, and one person seen in two videos is one cluster."""
from __future__ import annotations

import json
import re
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import yaml

from pipeline.evaluate.clusters import bcubed
from helpers.support import DEMO, REPO, cli, read_manifest
from helpers.identity import CLIPS, person_of

pytest.importorskip("dlib", reason="the identity extra (dlib-bin) is not installed")
pytestmark = [pytest.mark.testdata, pytest.mark.slow]

UNSEEN = ("ytf_agbani_darego0.avi", "ytf_aishwarya_rai0.avi", "ytf_albert_brooks0.avi")


def labelled(testdata: Path, clip: str) -> np.ndarray:
    return np.loadtxt(testdata / "identity" / f"{Path(clip).stem}.labeled_faces.txt",
                      delimiter=",", usecols=(2, 3, 4, 5))


def who_is(row: dict, testdata: Path, boxes: dict[str, np.ndarray]) -> str | None:
    """The labelled person of a crop, None for a face nobody labelled (a player, the crowd)."""
    clip = next((c for c in UNSEEN if Path(c).stem in row["source_id"]), None)
    if clip is None:
        person = person_of(row, boxes["ytf_aaron_guiel5"])
        return None if person == "aaron_clip_other" else person
    person = person_of({**row, "source_id": "aaron"}, boxes[Path(clip).stem])  # the IoU rule
    return Path(clip).stem.split("_")[1] if person == "aaron" else None


def run_cli(cwd: Path, config: dict) -> str:
    (cwd / "config.yaml").write_text(yaml.safe_dump(config))
    done = cli("run", "config.yaml", cwd=cwd, timeout=1200)
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.fixture(scope="module")
def unseen(testdata, model_cache, tmp_path_factory):  # noqa: F811
    """The face clips and the unseen clips, identity with its defaults: (folder, config, truth)."""
    cwd = tmp_path_factory.mktemp("unseen")
    config = {"name": "unseen", "output": "out", "sample": {"every": 0.2}, "identity": {},
              "sources": [{"path": str(testdata / "faces" / c)} for c in CLIPS]
              + [{"path": str(testdata / "identity" / c)} for c in UNSEEN]}
    run_cli(cwd, config)
    boxes = {Path(c).stem: labelled(testdata, c) for c in UNSEEN}
    boxes["ytf_aaron_guiel5"] = np.loadtxt(testdata / "faces" / "ytf_aaron_guiel5.labeled_faces.txt",
                                           delimiter=",", usecols=(2, 3, 4, 5))
    truth = {r["crop_id"]: who_is(r, testdata, boxes) for r in read_manifest(cwd / "out")}
    return cwd, config, truth


def test_no_cluster_holds_two_labelled_people(unseen):
    cwd, _, truth = unseen
    rows = [r for r in read_manifest(cwd / "out") if truth[r["crop_id"]]]
    scores = bcubed([r["identity_cluster"] or None for r in rows], [truth[r["crop_id"]] for r in rows])
    people = {truth[r["crop_id"]] for r in rows}
    print(f"\nBCubed over {len(rows)} labelled faces of {len(people)} people: {scores.to_json()}, "
          f"{len({r['identity_cluster'] for r in rows})} clusters")
    assert {"agbani", "aishwarya", "albert"} <= people
    assert scores.precision >= 0.99
    members: dict[str, list[str]] = {}
    for r in read_manifest(cwd / "out"):
        if r["identity_cluster"]:
            members.setdefault(r["identity_cluster"], []).append(r["crop_id"])
    assert all(name == min(ids) for name, ids in members.items())  # named by its smallest crop id


def test_a_face_under_the_floor_gets_no_cluster_and_a_reason(unseen, tmp_path):
    cwd, config, truth = unseen
    shutil.copytree(cwd / "out", tmp_path / "out")
    widths = sorted(float(r["box_w"]) for r in read_manifest(tmp_path / "out"))
    floor = widths[len(widths) // 4]  # a quarter of the faces under it: a global step, no stage
    stdout = run_cli(tmp_path, {**config, "identity": {"min_face": floor}})
    rows = read_manifest(tmp_path / "out")
    small = [r for r in rows if float(r["box_w"]) < floor]
    assert small and all((r["identity_cluster"], r["identity_skip"]) == ("", "small") for r in small)
    assert all(r["identity_cluster"] and not r["identity_skip"] for r in rows if r not in small)
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["identity"]["skipped"] == {"small": len(small)}
    assert summary["identity"]["min_face"] == floor
    assert summary["stages"]["identity"]["ran"] == 0  # the floor embeds nothing again
    assert f"({len(small)} too small to tell, no cluster)" in stdout


def test_the_demos_two_videos_of_one_person_share_a_cluster(model_cache, tmp_path):  # noqa: F811
    """configs/demo.yaml with ``identity: {}``: Grace Hopper's crops of hopper_pan and of the
    pan that ends on her (after 4.5 s) are one cluster, the cameraman (before 1 s) another; the
    summary counts each cluster's kept crops."""
    config = yaml.safe_load((REPO / "configs" / "demo.yaml").read_text())
    for source in config["sources"]:
        source["path"] = str(DEMO / Path(source["path"]).name)
    run_cli(tmp_path, {**config, "output": "out", "identity": {}})
    rows = [r for r in read_manifest(tmp_path / "out") if r["identity_cluster"]]
    hopper = {r["identity_cluster"] for r in rows if "hopper_pan" in r["source_id"]
              and ("cameraman" not in r["source_id"] or float(r["t_s"]) >= 4.5)}
    cameraman = {r["identity_cluster"] for r in rows
                 if "cameraman" in r["source_id"] and float(r["t_s"]) < 1.0}
    assert len(hopper) == 1 and cameraman and not cameraman & hopper
    assert {"hopper_pan", "cameraman_hopper_pan"} <= {
        r["source_id"].split("-")[1] for r in rows if r["identity_cluster"] in hopper}
    # per_cluster counts what dataset/ holds: the demo's dedupe drops embedded crops
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())["identity"]
    kept = [r for r in rows if r["status"] == "kept"]
    assert len(kept) < len(rows) == summary["embedded"]
    assert summary["per_cluster"] == dict(Counter(r["identity_cluster"] for r in kept).most_common())


def test_plan_counts_the_time_to_embed_the_faces(model_cache, tmp_path):  # noqa: F811
    """With identity, plan's time estimate includes embedding each face: the benchmark figure
    before any run, the recorded one after."""
    (tmp_path / "videos").mkdir()
    for name in ("astronaut_zoom.mp4", "hopper_pan.mp4"):
        shutil.copy(DEMO / name, tmp_path / "videos" / name)
    config = {"name": "p", "output": "out", "sources": [{"path": "videos"}],
              "sample": {"every": 1.0}, "identity": {}}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    first = cli("plan", "config.yaml", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert re.search(r"time: about (\d+:\d\d|[\d.]+ s) for sample \+ detect \+ crop \+ identity .*"
                     r"identity: (\d+:\d\d|[\d.]+ s) for about \d+ faces at 91 ms, dlib's benchmark figure",
                     first.stdout)
    assert cli("run", "config.yaml", "-q", "--limit", "1", cwd=tmp_path).returncode == 0
    after = cli("plan", "config.yaml", cwd=tmp_path)
    assert re.search(r"faces at \d+ ms, timings of 5 faces embedded by earlier runs", after.stdout), \
        after.stdout
