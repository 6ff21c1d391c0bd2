"""Being blocked (HTTP 429, a bot check) is a state of the run: it pauses, rotates proxies, stops
the host cleanly and says what to do; ``--retry-failed`` retries exactly the blocked sources.
Whole runs (marked slow): real yt-dlp against local HTTP servers and proxies on 127.0.0.1."""
from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest
import yaml

from httpserver import LocalHTTPServer, LocalProxy
from pipeline.blocked import HostGate
from pipeline.config import parse_config
from pipeline.errors import HostBlocked
from pipeline.run import run
from support import REPO, cli

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


@pytest.mark.slow
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


@pytest.mark.slow
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


@pytest.mark.slow
def test_a_bot_check_page_is_a_block_and_budget_zero_stops_at_once(http_server, tmp_path):
    http_server.bot_check("/watch.mp4")
    raw = config(tmp_path, [{"url": http_server.url("/watch.mp4")}], backoff={"budget_s": 0})
    report = run(parse_config(raw), progress=False, log=lambda _m: None)
    [failed] = report.failed
    assert failed.error_class == "blocked" and "Cloudflare anti-bot challenge" in failed.message
    assert report.exit_code == 1 and gets(http_server, "/watch.mp4") == 1  # no pause, no retry
    assert report.blocked_hosts == [f"127.0.0.1:{http_server.port}"]


@pytest.mark.slow
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


@pytest.mark.slow
def test_a_proxy_that_is_down_is_named_without_its_password(tmp_path):
    """Nobody listens on port 9: a network failure, and nothing shown or kept has the password."""
    write(tmp_path, config(tmp_path, [{"url": "http://127.0.0.1:9/clip.mp4"}],
                           proxies=[f"http://ann:{SECRET}@127.0.0.1:9"]))
    ran = cli("run", "c.yaml", "-q", "-vv", cwd=tmp_path)
    assert ran.returncode == 1 and "[download: network]" in ran.stdout, ran.stdout
    shown = [ran.stdout, ran.stderr]
    shown += [p.read_text() for p in (tmp_path / "out" / "state").rglob("*.json")]
    assert not [text for text in shown if SECRET in text]


@pytest.mark.slow
def test_a_bad_proxy_is_one_line_exit_2_and_masked(tmp_path):
    write(tmp_path, config(tmp_path, [{"url": "http://127.0.0.1:9/clip.mp4"}],
                           proxies=[f"ftp://ann:{SECRET}@127.0.0.1:21"]))
    done = cli("validate", "c.yaml", cwd=tmp_path)
    assert done.returncode == 2 and SECRET not in done.stdout + done.stderr
    assert done.stderr.strip().splitlines()[-1].strip().startswith(
        "download.proxies.0: 'ftp://***@127.0.0.1:21' is not a proxy URL: give http://")


@pytest.mark.slow
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


# The host's record, without a run: what units in other processes share through it.

def settings(**backoff):
    return parse_config({"sources": [{"url": "https://example.org/v"}],
                         "download": {"backoff": backoff}}).download


def too_many(_proxy):
    raise RuntimeError("HTTP Error 429: Too Many Requests")


def test_a_host_stopped_by_one_unit_is_not_asked_by_the_next(tmp_path):
    first = HostGate(tmp_path, "https://www.example.org/a", settings(pause_s=0.4, budget_s=0.4))
    second = HostGate(tmp_path, "https://example.org/b", settings(pause_s=0.4, budget_s=0.4))
    with pytest.raises(HostBlocked, match="example.org stopped for this run"):
        first.attempt(too_many)  # blocked, a pause of 0.4 s, blocked again: stopped
    with pytest.raises(HostBlocked, match="^not tried: example.org blocked this run"):
        second.attempt(lambda _p: pytest.fail("a stopped host is asked"))


def test_a_unit_waits_while_another_units_block_pauses_the_host(tmp_path):
    blocked_once = iter([True])
    first = HostGate(tmp_path, "https://example.org/a", settings(pause_s=0.5))
    pausing = threading.Thread(target=first.attempt, args=(
        lambda p: too_many(p) if next(blocked_once, False) else "given",))
    pausing.start()
    while not first.path.exists():  # the block is recorded: the host pauses 0.5 s
        time.sleep(0.01)
    started = time.monotonic()
    second = HostGate(tmp_path, "https://example.org/b", settings(pause_s=0.5))
    asked = second.attempt(lambda _p: time.monotonic())
    pausing.join()
    assert asked - started >= 0.4


@pytest.mark.parametrize("url", ["http://../../etc/passwd", "http://%2e%2e%2f%2e%2e/x",
                                 "http://[::1]:80/x", "http://\u00e9t\u00e9.example/x",
                                 "http://a:b@/x", "http://" + "x" * 300 + "/v"])
def test_a_hostile_host_name_names_no_file_outside_the_hosts_folder(tmp_path, url):
    gate = HostGate(tmp_path, url, settings(budget_s=0))
    with pytest.raises(HostBlocked):
        gate.attempt(too_many)
    [record] = (tmp_path / "hosts").glob("*.json")
    assert record.parent == tmp_path / "hosts" and len(record.name) < 100
    assert [p.name for p in tmp_path.iterdir()] == ["hosts"]


@pytest.mark.parametrize("damage", ["", "not json", "[1, 2]", '{"blocks": "x"}',
                                    '{"stopped": "yes"}', '{"until": 1e18}'])
def test_a_damaged_host_record_is_not_trusted(tmp_path, damage):
    gate = HostGate(tmp_path, "https://example.org/v", settings(pause_s=60))
    gate.path.parent.mkdir(parents=True)
    gate.path.write_text(damage)
    started = time.monotonic()
    assert gate.attempt(lambda _p: "given") == "given"
    assert time.monotonic() - started < 5
