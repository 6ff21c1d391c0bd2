"""Filters on yt-dlp's metadata, applied when a URL is listed, and the availability report;
through the CLI in a temp folder, against a YouTube-like site on 127.0.0.1 (``tests/sites``: a
yt-dlp extractor plugin the CLI finds on its PYTHONPATH). The CLI tests are slow (whole runs in
a subprocess); the rules of the filter and of the report's states: tests/unit/test_collection_rules.py."""
from __future__ import annotations

import csv
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from helpers.httpserver import LocalHTTPServer
from helpers.media import make_video
from helpers.support import REPO, cli, read_manifest

SITES = Path(__file__).resolve().parents[1] / "sites"
HOPPER = REPO / "demo" / "videos" / "hopper_pan.mp4"
ASTRONAUT = REPO / "demo" / "videos" / "astronaut_zoom.mp4"
CC = "Creative Commons Attribution license (reuse allowed)"
# No retries, a short socket timeout, and pauses of 0.1 s then 0.2 s when a host blocks (the
# third block in a row stops it): the default back-off waits 30 s, 60, 120, 240 s before it
# stops a host, 7.5 minutes of a test's run spent waiting.
DOWNLOAD = {"retries": 0, "socket_timeout": 3, "backoff": {"pause_s": 0.1, "factor": 2, "budget_s": 0.35}}


class Tube:
    """The YouTube-like site of ``tests/sites`` on a ``LocalHTTPServer``: videos (a page of
    metadata, or an error) and playlists."""

    def __init__(self, server: LocalHTTPServer, media: Path):
        self.server, self.media = server, media

    def video(self, vid: str, error: str | None = None, **page) -> None:
        if error is not None:
            page = {"error": error}
        else:
            page = {"title": vid, "duration": 1, "media": f"/tube/media/{vid}.mp4", **page}
            self.server.add_file(f"/tube/media/{vid}.mp4", page.pop("file", self.media))
        self.server.page(f"/tube/api/{vid}.json", json.dumps(page), "application/json")

    def blocked(self, vid: str) -> None:
        self.server.error(f"/tube/api/{vid}.json", 429)

    def playlist(self, name: str, entries: list[dict]) -> str:
        self.server.page(f"/tube/api/list-{name}.json", json.dumps({"title": name, "entries": entries}),
                         "application/json")
        return self.server.url(f"/tube/list/{name}")

    def asked(self, path: str) -> int:
        return len(self.server.requests_for(path))


def tube_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return cli(*args, cwd=cwd, env={"PYTHONPATH": f"{REPO}{os.pathsep}{SITES}"})


def write_config(folder: Path, sources: list[dict], **sections) -> Path:
    path = folder / "c.yaml"
    path.write_text(yaml.safe_dump({"name": "t", "output": "out", "sources": sources,
                                    "sample": {"every": 1.0},
                                    "download": DOWNLOAD,
                                    **sections}, sort_keys=False))
    return path


def report_rows(stdout: str) -> dict[str, tuple[str, str, str]]:
    """source id -> (state, change, why) from the report's table."""
    lines = stdout.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("source_id"))
    state, change, why = (lines[header].index(k) for k in ("state", "change", "why"))
    return {line.split()[0]: (line[state:change].strip(), line[change:why].strip(), line[why:].strip())
            for line in lines[header + 1:] if line.strip() and not line.startswith("videos: ")
            and not line.startswith("csv: ")}


def read_csv(path: Path) -> dict[str, dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as f:
        return {row["source_id"]: row for row in csv.DictReader(f)}


@pytest.mark.slow
def test_filtered_videos_are_never_downloaded_and_the_report_says_why(http_server, tmp_path):
    tube = Tube(http_server, HOPPER)
    tube.video("cc1", title="Free clip", license=CC, duration=6, upload_date="20210301")
    # the site chose this licence text: it must not reach the terminal as a control sequence
    tube.video("std", license="Standard\nYouTube\x1b[2J License", duration=6)
    tube.video("long", license=CC, duration=900)
    for vid, error in [("priv", "private"), ("geo", "geo"), ("age", "age"), ("gone", "removed")]:
        tube.video(vid, error)
    tube.blocked("bot")
    title = 'Free, "clip"\nsecond line'  # commas, quotes and a line break in a CSV cell
    listed = [{"id": "cc1", "title": title, "duration": 6}, {"id": "std", "duration": 6},
              {"id": "long", "duration": 900}, *({"id": v} for v in ("priv", "geo", "age", "gone", "bot"))]
    (tmp_path / "mine").mkdir()
    shutil.copy(ASTRONAUT, tmp_path / "mine" / "astronaut.mp4")
    write_config(tmp_path, [{"url": tube.playlist("mix", listed), "filter": {"max_duration": 600}},
                            {"path": "mine"}],
                 download={**DOWNLOAD, "filter": {"license": "creative-commons"}})

    plan = tube_cli("plan", "c.yaml", cwd=tmp_path)
    assert plan.returncode == 0, plan.stderr
    # 8 listed by the playlist, the local file (never filtered) besides
    assert "filter: 7 of 9 listed videos pass the filter (the others are never downloaded)" in plan.stdout
    assert "left out: localtube-long  needs a length of at most 600 s (duration: 900)" in plan.stdout

    ran = tube_cli("run", "c.yaml", "-q", cwd=tmp_path)
    assert ran.returncode == 1, ran.stdout + ran.stderr  # the unavailable ones failed
    assert "videos: 2 done, 2 filtered, 4 unavailable, 1 blocked" in ran.stdout, ran.stdout
    # nothing filtered was downloaded; the listing's duration was enough to leave "long" out
    assert tube.asked("/tube/media/std.mp4") == tube.asked("/tube/media/long.mp4") == 0
    assert tube.asked("/tube/api/long.json") == 0 and tube.asked("/tube/api/std.json") == 1
    assert tube.asked("/tube/media/cc1.mp4") > 0

    report = tube_cli("report", "c.yaml", cwd=tmp_path)
    assert report.returncode == 1, report.stderr  # unavailable and blocked ones, as run exits
    assert "\x1b" not in report.stdout
    rows = report_rows(report.stdout)
    local = next(sid for sid in rows if sid.startswith("file-astronaut-"))
    assert {sid: (state, why) for sid, (state, _, why) in rows.items()} == {
        "localtube-cc1": ("done", ""), local: ("done", ""),
        "localtube-priv": ("unavailable", "private"), "localtube-geo": ("unavailable", "geo"),
        "localtube-age": ("unavailable", "age"), "localtube-gone": ("unavailable", "removed"),
        "localtube-bot": ("blocked", "rate-limited"),
        "localtube-std": ("filtered", "needs a Creative Commons licence (license: Standard YouTube "
                                      "[2J License)"),
        "localtube-long": ("filtered", "needs a length of at most 600 s (duration: 900)")}
    assert "videos: 2 done, 2 filtered, 4 unavailable, 1 blocked" in report.stdout

    table = read_csv(tmp_path / "out" / "availability.csv")
    assert set(table) == set(rows)
    assert table["localtube-priv"]["message"].endswith("Private video. Sign in if you've been granted "
                                                       "access to this video")
    assert table["localtube-bot"]["message"].count("HTTP Error 429") == 1
    assert table["localtube-cc1"]["entry"] == "sources.0" and table[local]["entry"] == "sources.1"
    assert table["localtube-cc1"]["title"] == title
    assert {r["change"] for r in table.values()} == {""}  # a first run: nothing to compare with
    licences = {r["source_id"]: r["license"] for r in read_manifest(tmp_path / "out")}
    assert licences == {"localtube-cc1": CC, local: ""}


@pytest.mark.slow
def test_the_report_says_what_changed_since_the_run_before(http_server, tmp_path):
    clip = make_video(tmp_path / "clip.mp4", frames=25)
    tube = Tube(http_server, clip)
    tube.video("a", license=CC)
    tube.video("p", "private")
    tube.video("g", "removed")
    url = tube.playlist("mix", [{"id": v} for v in "apg"])
    write_config(tmp_path, [{"url": url, "filter": "license ~= 'Creative Commons'"}])
    first = tube_cli("run", "c.yaml", "-q", cwd=tmp_path)
    assert "videos: 1 done, 2 unavailable\n" in first.stdout, first.stdout + first.stderr

    tube.video("p", license=CC)  # made public
    tube.video("n", license=CC)
    tube.playlist("mix", [{"id": v} for v in "apn"])  # g left the playlist
    second = tube_cli("run", "c.yaml", "-q", "--refresh-sources", "--retry-failed", cwd=tmp_path)
    assert second.returncode == 0, second.stdout + second.stderr
    changed = ("videos: 3 done, 1 gone; changed since the run before: 1 newly done, 1 new in the "
               "listing, 1 gone from the listing")
    assert changed in second.stdout
    table = read_csv(tmp_path / "out" / "availability.csv")
    assert {sid: (r["state"], r["change"]) for sid, r in table.items()} == {
        "localtube-a": ("done", ""), "localtube-p": ("done", "was unavailable: private"),
        "localtube-n": ("done", "new"), "localtube-g": ("gone", "was unavailable: removed")}

    report = tube_cli("report", "c.yaml", cwd=tmp_path)  # what the last run changed, offline
    assert report.returncode == 0 and changed in report.stdout, report.stdout + report.stderr
    assert report_rows(report.stdout)["localtube-g"] == ("gone", "was unavailable: removed",
                                                         "not listed any more")
    # a damaged snapshot of the run before is not compared with
    (tmp_path / "out" / "state" / "availability.previous.json").write_text("{\"videos\": [1, 2")
    again = tube_cli("report", "c.yaml", cwd=tmp_path)
    assert again.returncode == 0 and "videos: 3 done\n" in again.stdout, again.stdout + again.stderr
    # a trial run takes one video; the others stay as an earlier run left them
    trial = tube_cli("run", "c.yaml", "-q", "--limit", "1", cwd=tmp_path)
    assert "videos: 3 done\n" in trial.stdout, trial.stdout + trial.stderr
    table = read_csv(tmp_path / "out" / "availability.csv")
    assert {sid: (r["state"], r["change"]) for sid, r in table.items()} == {
        sid: ("done", "") for sid in ("localtube-a", "localtube-p", "localtube-n")}


@pytest.mark.slow
def test_a_changed_filter_on_what_a_playlist_lists_asks_the_site_nothing(http_server, tmp_path):
    """A playlist lists each video's length and views: a changed length limit is decided on
    the saved listing (plan, report, run), offline; a licence, which it does not list, needs
    each video's page, so the URL is listed again."""
    tube = Tube(http_server, HOPPER)
    for vid, duration in (("short", 4), ("long", 40)):
        tube.video(vid, license=CC, duration=duration)
    url = tube.playlist("mix", [{"id": "short", "duration": 4, "view_count": 7},
                                {"id": "long", "duration": 40, "view_count": 700}])
    write_config(tmp_path, [{"url": url, "filter": {"min_duration": 10}}])
    first = tube_cli("plan", "c.yaml", cwd=tmp_path)
    assert "left out: localtube-short  needs a length of at least 10 s (duration: 4)" in first.stdout, (
        first.stdout + first.stderr)
    asked = len(http_server.requests)

    write_config(tmp_path, [{"url": url, "filter": {"max_duration": 10, "min_views": 5}}])
    changed = tube_cli("plan", "c.yaml", cwd=tmp_path)
    assert "left out: localtube-long  needs a length of at most 10 s (duration: 40)" in changed.stdout, (
        changed.stdout + changed.stderr)
    assert "filter: 1 of 2 listed videos pass the filter" in changed.stdout
    report = tube_cli("report", "c.yaml", cwd=tmp_path)
    assert report_rows(report.stdout)["localtube-long"] == (
        "filtered", "", "needs a length of at most 10 s (duration: 40)"), report.stdout + report.stderr
    assert report_rows(report.stdout)["localtube-short"][0] == "pending"
    ran = tube_cli("run", "c.yaml", "-q", cwd=tmp_path)
    assert "videos: 1 done, 1 filtered" in ran.stdout, ran.stdout + ran.stderr
    assert len(http_server.requests_for("/tube/api/list-mix.json")) == 1, "listed once, re-filtered since"
    assert not http_server.requests_for("/tube/api/long.json"), "the filtered video's page is never asked"
    assert len(http_server.requests) > asked  # the run's download of the one video it takes

    # the pages visited for the licence are saved, but not the media link nor the cookies sent
    (tmp_path / "cookies.txt").write_text("# Netscape HTTP Cookie File\n"
                                          "127.0.0.1\tFALSE\t/\tFALSE\t0\tsession\tcookie-secret-42\n")
    write_config(tmp_path, [{"url": url, "filter": {"license": "creative-commons"}}],
                 download={**DOWNLOAD, "ytdlp": {"cookiefile": "cookies.txt"}})
    licensed = tube_cli("plan", "c.yaml", cwd=tmp_path)
    assert "filter: 2 of 2 listed videos pass the filter" in licensed.stdout, licensed.stderr
    assert len(http_server.requests_for("/tube/api/list-mix.json")) == 2, "a licence: listed again"
    [saved] = (tmp_path / "out" / "state" / "sources").glob("*.json")
    assert "Creative Commons" in saved.read_text(), "the licences seen are kept for the next filter"
    assert "cookie-secret-42" not in saved.read_text() and "/tube/media/" not in saved.read_text()


@pytest.mark.slow
def test_a_changed_filter_is_decided_offline_and_a_damaged_listing_is_not_trusted(http_server, tmp_path):
    """Generic URLs (yt-dlp's own extractor): their metadata is the file's title only, which the
    saved listing holds, so another filter on the title asks the site nothing."""
    for name in ("keep", "drop"):
        http_server.add_file(f"/clip/{name}.mp4", HOPPER)
    sources = [{"url": http_server.url(f"/clip/{n}.mp4"), "filter": "title ~= 'keep'"}
               for n in ("keep", "drop")]
    write_config(tmp_path, sources)
    before = tube_cli("report", "c.yaml", cwd=tmp_path)
    assert before.returncode == 0, before.stderr
    assert {r[0] for r in report_rows(before.stdout).values()} == {"pending"}
    assert {r[2] for r in report_rows(before.stdout).values()} == {"not listed yet"}

    first = cli("plan", "c.yaml", cwd=tmp_path)
    assert "filter: 1 of 2 listed videos pass the filter" in first.stdout, first.stdout + first.stderr
    assert re.search(r"left out: generic-drop-\w+  needs title ~= 'keep' \(title: drop\)", first.stdout)
    asked = len(http_server.requests)
    assert cli("plan", "c.yaml", cwd=tmp_path).stdout == first.stdout
    assert len(http_server.requests) == asked  # the saved listing, with its verdicts

    for s in sources:
        s["filter"] = "title ~= 'drop'"
    write_config(tmp_path, sources)
    changed = cli("plan", "c.yaml", cwd=tmp_path)
    assert re.search(r"left out: generic-keep-\w+  needs title ~= 'drop'", changed.stdout), changed.stdout
    assert len(http_server.requests) == asked

    for saved in (tmp_path / "out" / "state" / "sources").glob("*.json"):
        listing = json.loads(saved.read_text())
        listing["entries"][0]["filtered"] = 5  # not a reason: the listing is made again
        saved.write_text(json.dumps(listing))
    asked = len(http_server.requests)
    damaged = cli("plan", "c.yaml", cwd=tmp_path)
    assert damaged.stdout == changed.stdout and len(http_server.requests) > asked, damaged.stderr


@pytest.mark.slow
@pytest.mark.parametrize("where, given, line", [
    ("download", {"filter": "5 < duration"},
     "download.filter.match: '5 < duration' is not a yt-dlp match-filter condition (e.g. duration "
     "< 600, license ~= 'Creative Commons', view_count >= 100, !is_live) (line 8)"),
    ("source", {"filter": {"uploaded_after": "2020-13-01"}},
     "sources.0.filter.uploaded_after: must be a day such as 2020-01-01 (got '2020-13-01') (line 6)"),
    ("source", {"filter": {"license": "it's & mine"}},
     "sources.0.filter.license: give creative-commons, or text without quotes, '&' or '\\' (line 6)"),
    ("local", {"filter": {"license": "creative-commons"}},
     "sources.0: a filter is for URL sources: it reads the metadata yt-dlp lists (licence, "
     "views, upload date), which a local file does not have (line 4)"),
])
def test_a_bad_filter_is_one_line_naming_its_key(tmp_path, where, given, line):
    source = {"path": "videos"} if where == "local" else {"url": "https://example.org/v"}
    if where == "download":
        write_config(tmp_path, [source], download=given)
    else:
        write_config(tmp_path, [{**source, **given}])
    for command in ("validate", "plan"):
        done = cli(command, "c.yaml", cwd=tmp_path)
        assert done.returncode == 2 and done.stdout == "", (done.stdout, done.stderr)
        assert done.stderr.strip().splitlines()[-1].strip() == line
    assert not (tmp_path / "out").exists()
