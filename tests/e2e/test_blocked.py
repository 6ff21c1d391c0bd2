"""Being blocked (HTTP 429, a bot check) is a state of the run: it pauses, rotates proxies, stops
the host cleanly and says what to do; ``--retry-failed`` retries exactly the blocked sources.
Whole runs: real yt-dlp against local HTTP servers and proxies on 127.0.0.1."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from pipeline.config.load import parse_config
from pipeline.runner.run import run
from helpers.httpserver import LocalHTTPServer, LocalProxy
from helpers.support import REPO, cli

pytestmark = pytest.mark.slow  # whole runs against local HTTP servers

HOPPER = REPO / "demo" / "videos" / "hopper_pan.mp4"
PAGE = '<html><body><video src="a.mp4"></video><video src="b.mp4"></video></body></html>'
SECRET = "s3cret"

# pauses of 0.1 s then 0.2 s; the third block in a row would pause 0.4 s, over the budget: stop
TINY = {"pause_s": 0.1, "factor": 2, "budget_s": 0.35}


def config(tmp_path: Path, sources: list[dict], **download) -> dict:
    return {"name": "blocked", "output": str(tmp_path / "out"), "sources": sources,
            "sample": {"every": 1.0},
            "download": {"retries": 0, "socket_timeout": 3, "backoff": TINY, **download}}


def write(tmp_path: Path, raw: dict) -> Path:
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def gets(server: LocalHTTPServer, path: str) -> int:
    return sum(r.method == "GET" for r in server.requests_for(path))


@pytest.fixture
def other_server(tmp_path):
    """A second host (another port of 127.0.0.1)."""
    with LocalHTTPServer(tmp_path) as server:
        yield server


def test_a_blocked_host_stops_other_hosts_go_on_and_retry_failed_takes_exactly_its_sources(
        http_server, other_server, tmp_path):
    http_server.page("/site/list.html", PAGE)  # the listing works; its videos answer 429
    http_server.error("/site/a.mp4", 429)
    http_server.error("/site/b.mp4", 429)
    other_server.add_file("/c.mp4", HOPPER)
    host = f"127.0.0.1:{http_server.port}"
    write(tmp_path, config(tmp_path, [{"url": http_server.url("/site/list.html")},
                                      {"url": other_server.url("/c.mp4")}]))

    ran = cli("run", "c.yaml", "-q", cwd=tmp_path)
    assert ran.returncode == 1, ran.stdout + ran.stderr
    blocked = [line for line in ran.stdout.splitlines() if "[download: blocked]" in line]
    assert len(blocked) == 2 and "sources: 1 done" in ran.stdout, ran.stdout
    # a: the first try and one after each of the 2 pauses the budget allows; b: never asked for
    assert gets(http_server, "/site/a.mp4") == 3 and gets(http_server, "/site/b.mp4") == 0
    assert any("not tried: " in line for line in blocked)
    assert [line for line in ran.stdout.splitlines() if line.startswith("blocked by")] == [
        f"blocked by {host} (bot check or too many requests): give cookies (download.ytdlp: "
        "{cookiefile: cookies.txt} or {cookiesfrombrowser: [firefox]}), a slower rate "
        "(download.ytdlp: {sleep_interval: 10, max_sleep_interval: 20, sleep_interval_requests: "
        "1}) or proxies (download.proxies), then run again with --retry-failed"], ran.stdout
    errors = [json.loads(p.read_text()) for p in (tmp_path / "out" / "state" / "download").glob(
        "*.error.json")]
    assert sorted(e["class"] for e in errors) == ["blocked", "blocked"]
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert [f["class"] for f in summary["failed"]] == ["blocked", "blocked"]

    st = cli("status", "c.yaml", cwd=tmp_path)
    assert st.returncode == 1 and st.stdout.count("[download: blocked]") == 2, st.stdout
    assert f"blocked by {host} (bot check" in st.stdout

    http_server.add_file("/site/a.mp4", HOPPER)  # the host lets us in again
    http_server.add_file("/site/b.mp4", HOPPER)
    again = cli("run", "c.yaml", "-q", cwd=tmp_path)  # recorded failures are not retried
    assert again.returncode == 1 and again.stdout.count("[download: blocked]") == 2
    assert gets(http_server, "/site/a.mp4") == 3 and gets(http_server, "/site/b.mp4") == 0
    fetched_c = gets(other_server, "/c.mp4")

    retried = cli("run", "c.yaml", "-q", "--retry-failed", cwd=tmp_path)
    assert retried.returncode == 0, retried.stdout + retried.stderr
    assert "sources: 3 done (2 with new work, 1 already done)" in retried.stdout
    assert gets(http_server, "/site/b.mp4") > 0 and gets(other_server, "/c.mp4") == fetched_c
    assert "blocked by" not in retried.stdout


def test_pauses_grow_and_a_host_that_lets_us_in_again_is_done(http_server, tmp_path):
    """429 twice (here while listing the URL), then the video: pauses of 0.2 s and 0.4 s."""
    http_server.error("/busy.mp4", 429, times=2, file=HOPPER)
    raw = config(tmp_path, [{"url": http_server.url("/busy.mp4")}],
                 backoff={"pause_s": 0.2, "factor": 2, "budget_s": 5})
    report = run(parse_config(raw), progress=False, log=lambda _m: None)
    assert report.exit_code == 0, report.failed
    times = [r.time for r in http_server.requests_for("/busy.mp4") if r.method == "GET"]
    assert times[1] - times[0] >= 0.2 and times[2] - times[1] >= 0.4, times
    assert (tmp_path / "out" / "videos" / f"{report.outcomes[0].sid}.mp4").is_file()


def test_a_bot_check_page_is_a_block_and_budget_zero_stops_at_once(http_server, tmp_path):
    http_server.bot_check("/watch.mp4")
    raw = config(tmp_path, [{"url": http_server.url("/watch.mp4")}], backoff={"budget_s": 0})
    report = run(parse_config(raw), progress=False, log=lambda _m: None)
    [failed] = report.failed
    assert failed.error_class == "blocked" and "Cloudflare anti-bot challenge" in failed.message
    assert report.exit_code == 1 and gets(http_server, "/watch.mp4") == 1  # no pause, no retry
    assert report.blocked_hosts == [f"127.0.0.1:{http_server.port}"]


def test_a_block_moves_to_the_next_proxy_and_no_password_is_ever_shown(http_server, tmp_path):
    http_server.add_file("/clip.mp4", HOPPER)
    with LocalProxy(status=429) as refused, LocalProxy() as relay:
        proxies = [refused.url(f"ann:{SECRET}"), relay.url(f"bob:{SECRET}")]
        write(tmp_path, config(tmp_path, [{"url": http_server.url("/clip.mp4")}], proxies=proxies))
        ran = cli("run", "c.yaml", "-q", "-vv", "--log", "run.log", cwd=tmp_path)
        switch = (f"switching from http://***@127.0.0.1:{refused.port} to "
                  f"http://***@127.0.0.1:{relay.port}")
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert refused.paths() == ["/clip.mp4"]  # the first proxy's address is blocked: one try
    assert relay.paths() and set(relay.paths()) == {"/clip.mp4"}
    # every request the site saw came through the second proxy, with its credentials
    assert len(http_server.requests_for("/clip.mp4")) == len(relay.requests)
    assert all(r.headers.get("Proxy-Authorization") for r in relay.requests)
    assert switch in ran.stderr, ran.stderr
    shown = [ran.stdout, ran.stderr, (tmp_path / "run.log").read_text()]
    shown += [p.read_text(errors="replace") for p in (tmp_path / "out").rglob("*")
              if p.is_file() and p.suffix in (".json", ".jsonl", ".csv", ".html", ".txt")]
    assert not [text for text in shown if SECRET in text]


def test_a_proxy_that_is_down_is_named_without_its_password(tmp_path):
    """Nobody listens on port 9: a network failure, and nothing shown or kept has the password."""
    write(tmp_path, config(tmp_path, [{"url": "http://127.0.0.1:9/clip.mp4"}],
                           proxies=[f"http://ann:{SECRET}@127.0.0.1:9"]))
    ran = cli("run", "c.yaml", "-q", "-vv", cwd=tmp_path)
    assert ran.returncode == 1 and "[download: network]" in ran.stdout, ran.stdout
    shown = [ran.stdout, ran.stderr]
    shown += [p.read_text() for p in (tmp_path / "out" / "state").rglob("*.json")]
    assert not [text for text in shown if SECRET in text]


def test_a_bad_proxy_is_one_line_exit_2_and_masked(tmp_path):
    write(tmp_path, config(tmp_path, [{"url": "http://127.0.0.1:9/clip.mp4"}],
                           proxies=[f"ftp://ann:{SECRET}@127.0.0.1:21"]))
    done = cli("validate", "c.yaml", cwd=tmp_path)
    assert done.returncode == 2 and SECRET not in done.stdout + done.stderr
    assert done.stderr.strip().splitlines()[-1].strip().startswith(
        "download.proxies.0: 'ftp://***@127.0.0.1:21' is not a proxy URL: give http://")


def test_worker_processes_see_a_host_stopped_by_the_run(http_server, tmp_path):
    """The run's process stops the host while listing (budget 0); the two worker processes
    read that from the host's record in state/ and ask the host for nothing."""
    http_server.page("/site/list.html", PAGE)
    http_server.add_file("/site/a.mp4", HOPPER)
    http_server.add_file("/site/b.mp4", HOPPER)
    http_server.error("/busy/list.html", 429)
    raw = {**config(tmp_path, [{"url": http_server.url("/site/list.html")},
                               {"url": http_server.url("/busy/list.html")}],
                    backoff={"budget_s": 0}), "workers": 2}
    report = run(parse_config(raw), progress=False, log=lambda _m: None)
    assert [o.error_class for o in report.outcomes] == ["blocked"] * 3
    assert gets(http_server, "/site/a.mp4") == gets(http_server, "/site/b.mp4") == 0
    videos = [o for o in report.outcomes if o.sid.startswith("html5-")]
    assert len(videos) == 2 and all(o.message.startswith("not tried: ") for o in videos)
