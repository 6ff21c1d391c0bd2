"""The download stage through real yt-dlp against a local HTTP server on 127.0.0.1."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipeline.config.load import parse_config
from pipeline.runner.run import run
from helpers.support import cli, read_manifest

REPO = Path(__file__).resolve().parents[2]
HOPPER = REPO / "demo" / "videos" / "hopper_pan.mp4"
ASTRONAUT = REPO / "demo" / "videos" / "astronaut_zoom.mp4"


pytestmark = pytest.mark.slow  # whole runs against a local HTTP server


def config(tmp_path: Path, sources: list[dict], **extra) -> dict:
    return {"name": "dl", "output": str(tmp_path / "out"), "sources": sources,
            "sample": {"every": 1.0}, "download": {"retries": 2, "socket_timeout": 3},
            **extra}


def test_direct_video_url_end_to_end(http_server, tmp_path):
    http_server.add_file("/v/hopper.mp4", HOPPER)
    url = http_server.url("/v/hopper.mp4")
    cfg = parse_config(config(tmp_path, [{"url": url, "label": "hopper"}]))
    report = run(cfg, progress=False)
    assert report.exit_code == 0, report.failed
    [outcome] = report.outcomes
    root = cfg.output_dir
    assert outcome.sid.startswith("generic-hopper-")
    video = root / "videos" / f"{outcome.sid}.mp4"
    assert video.read_bytes() == HOPPER.read_bytes()
    info = json.loads((root / "videos" / f"{outcome.sid}.info.json").read_text())
    assert info["webpage_url"] == url and info["width"] == 640 and info["extractor"] == "generic"
    rows = read_manifest(root)
    assert rows and {r["source_url"] for r in rows} == {url}
    assert {r["label"] for r in rows} == {"hopper"}


def test_changing_later_stages_never_downloads_again(http_server, tmp_path):
    http_server.add_file("/hopper.mp4", HOPPER)
    raw = config(tmp_path, [{"url": http_server.url("/hopper.mp4")}])
    run(parse_config(raw), progress=False)
    fetched = len(http_server.requests_for("/hopper.mp4"))
    raw["crop"] = {"padding": 0.8}
    raw["detect"] = {"min_score": 0.8}
    report = run(parse_config(raw), progress=False)
    assert report.outcomes[0].stages == {"download": "skipped", "sample": "skipped",
                                         "detect": "ran", "crop": "ran"}
    assert len(http_server.requests_for("/hopper.mp4")) == fetched


PAGE = """<!doctype html><html><head><title>Two clips</title></head><body>
<video src="a.mp4" controls></video>
<video controls><source src="/media/b.mp4" type="video/mp4"></video>
</body></html>"""


def test_playlist_page_expands_and_resumes_offline(http_server, tmp_path):
    http_server.add_file("/site/a.mp4", HOPPER)
    http_server.add_file("/media/b.mp4", ASTRONAUT)
    http_server.page("/site/page.html", PAGE)
    raw = config(tmp_path, [{"url": http_server.url("/site/page.html"), "label": "person"}])
    report = run(parse_config(raw), progress=False)
    assert report.exit_code == 0, report.failed
    sids = sorted(o.sid for o in report.outcomes)
    assert len(sids) == 2 and all(s.startswith("html5-page-") for s in sids)
    cached = list((tmp_path / "out" / "state" / "sources").glob("*.json"))
    assert len(cached) == 1 and len(json.loads(cached[0].read_text())["entries"]) == 2
    assert {r["source_id"] for r in read_manifest(tmp_path / "out")} == set(sids)
    # the saved list makes a rerun work with the site gone
    http_server.stop()
    again = run(parse_config(raw), progress=False)
    assert again.exit_code == 0 and sorted(o.sid for o in again.outcomes) == sids


def test_http_errors_fail_only_their_source(http_server, tmp_path):
    http_server.add_file("/ok.mp4", HOPPER)
    http_server.not_found("/gone.mp4")
    http_server.server_error("/broken.mp4")
    raw = config(tmp_path, [{"url": http_server.url("/ok.mp4")},
                            {"url": http_server.url("/gone.mp4")},
                            {"url": http_server.url("/broken.mp4")}],
                 download={"retries": 0, "socket_timeout": 3})
    report = run(parse_config(raw), progress=False)
    assert report.exit_code == 1
    failed = {o.message.split("HTTP Error ")[1][:3]: o for o in report.failed}
    assert failed["404"].error_class == "unavailable" and failed["500"].error_class == "network"
    assert [o.ok for o in report.outcomes].count(True) == 1 and len(report.failed) == 2
    for o in report.failed:
        err = json.loads((tmp_path / "out" / "state" / "download" / f"{o.sid}.error.json").read_text())
        assert err["stage"] == "download" and err["message"].startswith("[generic]")


def test_status_shows_a_listing_that_failed(http_server, tmp_path):
    """A page that could not even be listed fails its entry; status says so, and exits 1 as run."""
    import yaml

    http_server.not_found("/gone/playlist.html")
    config_file = tmp_path / "c.yaml"
    raw = config(tmp_path, [{"url": http_server.url("/gone/playlist.html")}])
    config_file.write_text(yaml.safe_dump(raw))
    ran = cli("run", str(config_file), "-q", cwd=tmp_path)
    assert ran.returncode == 1 and "[download: unavailable]" in ran.stdout, ran.stdout + ran.stderr
    st = cli("status", str(config_file), cwd=tmp_path)
    assert st.returncode == 1, st.stdout
    [row] = [line.split() for line in st.stdout.splitlines() if line.startswith("download")]
    assert row[1:3] == ["0", "1"]  # done 0, failed 1
    assert "[download: unavailable]" in st.stdout and "404" in st.stdout
    assert "not listed yet" not in st.stdout


def test_dropped_connection_is_resumed(http_server, tmp_path):
    # listing the source and yt-dlp's probe each make one GET, then the download's own is cut
    http_server.drop("/hopper.mp4", after_bytes=40_000, times=3, file=HOPPER)
    raw = config(tmp_path, [{"url": http_server.url("/hopper.mp4")}],
                 download={"retries": 5, "socket_timeout": 3})
    report = run(parse_config(raw), progress=False)
    assert report.exit_code == 0, report.failed
    sid = report.outcomes[0].sid
    assert (tmp_path / "out" / "videos" / f"{sid}.mp4").read_bytes() == HOPPER.read_bytes()
    assert any(r and r.startswith("bytes=") for r in http_server.ranges_for("/hopper.mp4")), \
        [(q.range, q.status) for q in http_server.requests_for("/hopper.mp4")]


def test_stalled_server_times_out_as_a_network_error(http_server, tmp_path):
    http_server.stall("/slow.mp4", seconds=20, after_bytes=1000, file=HOPPER)
    raw = config(tmp_path, [{"url": http_server.url("/slow.mp4")}],
                 download={"retries": 0, "socket_timeout": 1})
    report = run(parse_config(raw), progress=False)
    assert report.exit_code == 1 and report.failed[0].error_class == "network", report.failed[0].message
    assert "timed out" in report.failed[0].message


def test_ytdlp_options_are_passed_through(http_server, tmp_path):
    http_server.add_file("/hopper.mp4", HOPPER)
    raw = config(tmp_path, [{"url": http_server.url("/hopper.mp4")}],
                 download={"ytdlp": {"http_headers": {"X-From-Config": "yes"}}})
    assert run(parse_config(raw), progress=False).exit_code == 0
    seen = [r.headers.get("X-From-Config") for r in http_server.requests_for("/hopper.mp4")]
    assert "yes" in seen


def test_only_segments_are_downloaded_and_keep_source_time(http_server, tmp_path):
    pytest.importorskip("imageio_ffmpeg", reason="needs an ffmpeg binary (pip install imageio-ffmpeg)")
    http_server.add_file("/hopper.mp4", HOPPER)
    raw = config(tmp_path, [{"url": http_server.url("/hopper.mp4"), "label": "hopper",
                             "segments": [{"start": 1, "end": 2.5, "label": "early"},
                                          {"start": 3, "end": 4.5}]}],
                 sample={"every": 0.5})
    report = run(parse_config(raw), progress=False)
    assert report.exit_code == 0, report.failed
    sid = report.outcomes[0].sid
    videos = sorted(p.name for p in (tmp_path / "out" / "videos").glob(f"{sid}.*.mp4"))
    assert videos == [f"{sid}.1.0-2.5.mp4", f"{sid}.3.0-4.5.mp4"]
    rows = read_manifest(tmp_path / "out")
    times = sorted({float(r["t_s"]) for r in rows})
    assert times and all(1 <= t < 2.5 or 3 <= t < 4.5 for t in times), times
    assert min(times) < 1.2 and max(times) >= 4.0
    assert rows
    for r in rows:
        assert r["label"] == ("early" if float(r["t_s"]) < 2.5 else "hopper")
