"""``python -m pipeline review`` in a real headless Chromium: keyboard review, a reload keeps the
selection, save writes rejects.txt in the output folder, and the next run recomputes nothing."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml

from reviewkit import copy_run
from support import read_manifest
from test_review_page import browser  # noqa: F401 (the module's Chromium fixture)

REPO = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.slow  # the review server and a headless Chromium


@pytest.fixture
def served(review_demo, tmp_path):
    """A copy of the demo run and ``review`` serving it, as a user starts it; (run, base URL)."""
    demo = copy_run(review_demo, tmp_path / "out")
    (tmp_path / "run.yaml").write_text(yaml.safe_dump(demo.raw))
    env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "pipeline", "review", "run.yaml"], cwd=tmp_path,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        match = re.search(r"(http://127\.0\.0\.1:\d+)/sheets/index\.html", line)
        assert match, (line, proc.stderr.read() if proc.poll() is not None else "")
        yield demo, match.group(1), proc
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def states(page) -> list[str]:
    return sorted(page.eval_on_selector_all("figure.rejected", "els => els.map(e => e.dataset.id)"))


def test_review_server_keeps_the_selection_and_writes_rejects(browser, served):  # noqa: F811
    demo, base, proc = served
    root = demo.root
    rows = read_manifest(root)
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    # nothing leaves the machine: only the review server answers
    context.route(lambda url: not url.startswith(base), lambda route: route.abort())
    expect = pytest.importorskip("playwright.sync_api").expect
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    try:
        page.goto(base + "/")
        assert page.url == base + "/sheets/index.html"
        ids = page.eval_on_selector_all("#groups figure", "els => els.map(e => e.dataset.id)")
        assert ids == [r["crop_id"] for r in rows]
        # keyboard: the first arrow press focuses the first crop; x rejects and moves on
        page.keyboard.press("ArrowRight")
        page.keyboard.press("ArrowRight")
        page.keyboard.press("x")  # rejects ids[1], now on ids[2]
        page.keyboard.press("x")  # rejects ids[2], now on ids[3]
        page.keyboard.press("x")  # rejects ids[3]
        page.keyboard.press("u")  # ...undone
        assert states(page) == sorted(ids[1:3])
        page.keyboard.press("ArrowLeft")
        focused = page.evaluate("document.activeElement.closest('figure').dataset.id")
        assert focused == ids[2]
        page.locator(f'figure[data-id="{ids[-1]}"] button.thumb').click()
        chosen = sorted([ids[1], ids[2], ids[-1]])
        assert states(page) == chosen
        assert "unsaved: 3 newly rejected" in page.locator("#review-state").text_content()

        page.reload()
        page.wait_for_selector("#groups figure")
        assert states(page) == chosen, "a reload keeps the selection"
        assert "unsaved: 3 newly rejected" in page.locator("#review-state").text_content()

        page.locator("#save").click()
        # (an assertion that waits; wait_for_function would evaluate a string, which the page's CSP forbids)
        expect(page.locator("#review-state")).to_have_text(re.compile(r"^saved"), timeout=20_000)
        assert "saved 3 crop id(s) to rejects.txt" in page.locator("#review-state").text_content()
        page.reload()
        page.wait_for_selector("#groups figure")
        assert states(page) == chosen and "unsaved" not in page.locator("#review-state").text_content()
        assert errors == []
    finally:
        context.close()
    lines = (root / "rejects.txt").read_text().splitlines()
    assert sorted(line for line in lines if line and not line.startswith("#")) == chosen
    proc.terminate()
    out, _ = proc.communicate(timeout=10)
    assert "saved 3 crop id(s)" in out

    result = subprocess.run([sys.executable, "-m", "pipeline", "run", "run.yaml", "-q"],
                            cwd=root.parent, capture_output=True, text=True, timeout=300,
                            env={**os.environ, "PYTHONPATH": str(REPO)})
    assert result.returncode == 0, result.stderr
    summary = json.loads((root / "summary.json").read_text())
    assert all(s == {"ran": 0, "skipped": 3, "failed": 0} for s in summary["stages"].values())
    assert {r["crop_id"] for r in read_manifest(root) if r["status"] == "rejected"} == set(chosen)


def test_review_server_accepts_saves_from_its_page_only(served):
    demo, base, _ = served
    request = urllib.request.Request(base + "/api/rejects", data=b"x\n", method="POST",
                                     headers={"Origin": "http://example.com"})
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(request, timeout=10)
    assert err.value.code == 403
    assert not (demo.root / "rejects.txt").exists()
    for path in ("/manifest.csv", "/run.yaml", "/state/", "/sheets/../manifest.csv"):
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(base + path, timeout=10)
        assert err.value.code == 404, path


def test_captions_show_tenths_when_frames_are_under_a_second_apart(review_demo):
    """The demo samples every 0.5 s: whole seconds would caption two crops alike."""
    from pipeline.sheet import format_time, time_decimals

    rows = read_manifest(review_demo.root)
    assert time_decimals(rows) == 1
    assert time_decimals([{"source_id": "a", "t_s": 0.0}, {"source_id": "a", "t_s": 1.0},
                          {"source_id": "b", "t_s": 0.5}]) == 0
    assert format_time(65.93, 1) == "01:05.9" and format_time(3725.5, 1) == "1:02:05.5"
    page = (review_demo.root / "sheets" / "index.html").read_text()
    times = json.loads(re.search(r'id="data">(.*?)</script>', page).group(1).replace("\\u003c", "<"))
    shown = [c["time"] for c in times["crops"]]
    assert all(re.fullmatch(r"\d\d:\d\d\.\d", t) for t in shown)
    assert len(set(shown)) > len({t.split(".")[0] for t in shown})
