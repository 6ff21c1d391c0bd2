"""sheets/index.html in a real headless Chromium: loads from file://, filters, the review loop.

Playwright's Python package drives the system Chromium (never a downloaded one); both are
optional, and these tests skip, saying what is missing, without them. One browser serves the
whole module. Every request that would leave the machine is aborted: the page must work offline.
"""
from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from PIL import Image

from pipeline.runner.run import run
from pipeline.state.markers import State
from helpers.reviewkit import close, copy_run, open_page
from helpers.support import read_manifest

pytestmark = pytest.mark.slow  # a headless Chromium on the demo run


@pytest.fixture(scope="module")
def screenshots(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("screenshots", numbered=False)


def visible_ids(page) -> list[str]:
    return page.eval_on_selector_all("#groups figure:not([hidden])", "els => els.map(e => e.dataset.id)")


def test_page_loads_from_disk_without_errors_and_shows_every_crop(browser, review_demo, screenshots):
    root = review_demo.root
    rows = read_manifest(root)
    opened = open_page(browser, root / "sheets" / "index.html", height=4000)
    page = opened.page
    try:
        per_label = Counter(r["label"] for r in rows)
        assert len(per_label) == 3  # astronaut, hopper, cameraman
        for label, n in per_label.items():
            assert page.locator(f'section[data-group="{label}"] figure').count() == n, label
            assert page.locator(f'section[data-group="{label}"] h2').text_content() == f"{label} ({n})"
        imgs = page.locator("#groups img")
        assert imgs.count() == len(rows)
        assert set(page.eval_on_selector_all("#groups img", "els => els.map(e => e.loading)")) == {"lazy"}
        srcs = page.eval_on_selector_all("#groups img", "els => els.map(e => e.getAttribute('src'))")
        assert srcs == ["../" + r["file"] for r in rows]  # manifest order is (source, time)
        # a tall window shows them all: every thumbnail really loads from disk
        page.wait_for_function("[...document.images].every(i => i.complete)")
        assert page.evaluate("[...document.images].filter(i => i.naturalWidth === 0).length") == 0
        counts = page.locator("#counts").text_content()
        assert counts.startswith(f"{len(rows)} crops · {len(rows)} kept") and "0 rejected" in counts
        # captions: short id, time (a link to the source at that time), score
        first = page.locator("#groups figure").first
        assert first.locator(".src").text_content() == "astronaut_zoom"
        link = first.locator("a")
        assert link.text_content().startswith("00:00") and link.get_attribute("href").startswith("file://")
        assert link.get_attribute("href").endswith("#t=0")
        assert opened.errors == [] and opened.dialogs == []
    finally:
        close(opened)
    # the screenshots a person looks at: the page (normal window) and one sheet
    opened = open_page(browser, root / "sheets" / "index.html")
    try:
        opened.page.locator("#groups figure button.thumb").nth(1).click()
        opened.page.screenshot(path=str(screenshots / "index.png"), full_page=True)
    finally:
        close(opened)
    Image.open(root / "sheets" / "astronaut.jpg").save(screenshots / "sheet-astronaut.png")
    print(f"\nscreenshots: {screenshots / 'index.png'}, {screenshots / 'sheet-astronaut.png'}")


def test_filters_by_label_split_score_and_source(browser, review_demo):
    rows = read_manifest(review_demo.root)
    opened = open_page(browser, review_demo.root / "sheets" / "index.html")
    page = opened.page
    try:
        page.select_option("#f-label", "cameraman")
        assert visible_ids(page) == [r["crop_id"] for r in rows if r["label"] == "cameraman"]
        assert page.locator('section[data-group="astronaut"]').is_hidden()
        page.select_option("#f-label", "")
        split = rows[-1]["split"]
        page.select_option("#f-split", split)
        assert visible_ids(page) == [r["crop_id"] for r in rows if r["split"] == split]
        page.select_option("#f-split", "")
        scores = sorted({float(r["score"]) for r in rows})
        threshold = scores[len(scores) // 2]
        page.fill("#f-score", f"{threshold}")
        assert page.locator("#f-score-out").text_content() == f"{threshold:.2f}"
        assert visible_ids(page) == [r["crop_id"] for r in rows if float(r["score"]) >= threshold]
        assert 0 < len(visible_ids(page)) < len(rows)
        page.fill("#f-score", "0")
        sid = rows[-1]["source_id"]
        page.select_option("#f-source", sid)
        assert visible_ids(page) == [r["crop_id"] for r in rows if r["source_id"] == sid]
        assert page.locator("#counts").text_content().endswith(f"{len(visible_ids(page))} shown")
        page.select_option("#f-source", "")
        page.select_option("#f-group", "split")
        groups = page.eval_on_selector_all("#groups section", "els => els.map(e => e.dataset.group)")
        assert groups == [s for s in ("train", "val", "test") if any(r["split"] == s for r in rows)]
        assert len(visible_ids(page)) == len(rows)
        assert opened.errors == []
    finally:
        close(opened)


def test_review_in_the_browser_goes_back_into_the_run(browser, review_demo, tmp_path):
    """The review loop as a user runs it: reject three crops in the page, save, rerun: exactly those leave
    dataset/ and are 'rejected' in the manifest, and no stage is recomputed."""
    demo = copy_run(review_demo, tmp_path / "out")
    root = demo.root
    rows = read_manifest(root)
    chosen = [rows[2]["crop_id"], rows[len(rows) // 2]["crop_id"], rows[-1]["crop_id"]]
    restored = rows[3]["crop_id"]
    opened = open_page(browser, root / "sheets" / "index.html")
    page = opened.page
    try:
        for cid in chosen + [restored]:
            page.locator(f'figure[data-id="{cid}"] button.thumb').click()
        page.locator(f'figure[data-id="{restored}"] button.thumb').click()  # a second click restores
        marked = page.eval_on_selector_all("figure.rejected", "els => els.map(e => e.dataset.id)")
        assert sorted(marked) == sorted(chosen)
        restored_thumb = page.locator(f'figure[data-id="{restored}"] button.thumb')
        assert restored_thumb.get_attribute("aria-pressed") == "false"
        assert "3 rejected" in page.locator("#counts").text_content()
        assert page.locator("#save").text_content() == "Save rejects.txt (3)"
        label0 = next(r["label"] for r in rows if r["crop_id"] == chosen[0])
        n0 = sum(r["label"] == label0 for r in rows)
        n0_rejected = sum(r["label"] == label0 for r in rows if r["crop_id"] in chosen)
        assert page.locator(f'section[data-group="{label0}"] h2').text_content() == \
            f"{label0} ({n0}, {n0_rejected} rejected)"
        page.select_option("#f-status", "rejected")
        assert sorted(visible_ids(page)) == sorted(chosen)
        # a mistaken click under a status filter can be undone in place: the crop stays in view
        thumb = page.locator(f'figure[data-id="{chosen[0]}"] button.thumb')
        thumb.click()
        assert sorted(visible_ids(page)) == sorted(chosen)
        assert "2 rejected" in page.locator("#counts").text_content()
        thumb.click()
        assert "3 rejected" in page.locator("#counts").text_content()
        with page.expect_download() as download:
            page.locator("#save").click()
        assert download.value.suggested_filename == "rejects.txt"
        download.value.save_as(root / "rejects.txt")
        assert "unsaved" not in page.locator("#review-state").text_content()
        assert opened.errors == []
    finally:
        close(opened)
    text = (root / "rejects.txt").read_text()
    assert [line for line in text.splitlines() if line and not line.startswith("#")] == chosen

    report = run(demo.config(), progress=False, log=lambda _m: None)
    summary = json.loads((root / "summary.json").read_text())
    assert all(s == {"ran": 0, "skipped": 3, "failed": 0} for s in summary["stages"].values())
    after = read_manifest(root)
    assert {r["crop_id"] for r in after if r["status"] == "rejected"} == set(chosen)
    assert {p.stem for p in (root / "dataset").rglob("*.jpg")} == {r["crop_id"] for r in rows} - set(chosen)
    assert all((root / r["file"]).is_file() for r in after)
    assert report.dataset.rejected == 3 and summary["crops"]["rejected"] == 3

    # the rebuilt page starts from the manifest: the three are marked; restoring one works too
    opened = open_page(browser, root / "sheets" / "index.html")
    page = opened.page
    try:
        marked = page.eval_on_selector_all("figure.rejected", "els => els.map(e => e.dataset.id)")
        assert sorted(marked) == sorted(chosen)
        page.locator(f'figure[data-id="{chosen[0]}"] button.thumb').click()
        with page.expect_download() as download:
            page.locator("#save").click()
        download.value.save_as(root / "rejects.txt")
    finally:
        close(opened)
    run(demo.config(), progress=False, log=lambda _m: None)
    assert {r["crop_id"] for r in read_manifest(root) if r["status"] == "rejected"} == set(chosen[1:])


HOSTILE_TITLE = "</script><script>window.__pwned=1;alert(1)</script><!--<script>"
HOSTILE_UPLOADER = '<img src=x onerror="window.__pwned=2;alert(2)">'


def test_a_hostile_title_shows_as_text(browser, review_demo, tmp_path):
    demo = copy_run(review_demo, tmp_path / "out")
    root = demo.root
    sid = read_manifest(root)[0]["source_id"]
    info_file = root / "videos" / f"{sid}.info.json"
    info = json.loads(info_file.read_text())
    info.update(title=HOSTILE_TITLE, uploader=HOSTILE_UPLOADER)
    info_file.write_text(json.dumps(info))
    state = State(root)  # record the edit as the download's output, or it is repaired away
    state.finish("download", sid, state.read("download", sid))
    run(demo.config(), progress=False, log=lambda _m: None)  # global steps re-read the metadata
    assert read_manifest(root)[0]["title"] == HOSTILE_TITLE
    html_text = (root / "sheets" / "index.html").read_text()
    assert HOSTILE_TITLE not in html_text and "<img src=x" not in html_text
    opened = open_page(browser, root / "sheets" / "index.html")
    page = opened.page
    try:
        assert page.evaluate("window.__pwned") is None
        assert opened.dialogs == []
        assert page.locator("script").count() == 2
        assert page.locator("img[src=x]").count() == 0
        option = page.locator(f'#f-source option[value="{sid}"]')
        assert option.text_content().endswith(HOSTILE_TITLE)
        tooltip = page.locator(f'figure[data-id^="{sid}"] .src').first.get_attribute("title")
        assert tooltip == f"{HOSTILE_TITLE} — {HOSTILE_UPLOADER}"
        assert page.locator("#groups figure").count() == len(read_manifest(root))
        assert opened.errors == []
    finally:
        close(opened)
