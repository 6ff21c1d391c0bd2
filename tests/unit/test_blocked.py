"""A host's record of blocks (bot checks, HTTP 429), without a run: what units in other
processes share through it (pausing and stopping together), and what a hostile host name or a
damaged record can do to it. The whole runs are in tests/e2e/test_blocked.py."""
from __future__ import annotations

import json
import threading
import time

import pytest

from pipeline.config.load import parse_config
from pipeline.core.errors import HostBlocked
from pipeline.sources.blocked import HostGate


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
    until = json.loads(first.path.read_text())["until"]  # the pause's end, as time.time()
    second = HostGate(tmp_path, "https://example.org/b", settings(pause_s=0.5))
    asked = second.attempt(lambda _p: time.time())
    pausing.join()
    assert asked >= until  # however late this thread saw the record, the host was not asked before


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
