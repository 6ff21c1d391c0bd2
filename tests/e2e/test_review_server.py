"""``python -m pipeline review`` in a real headless Chromium: keyboard review, a reload keeps the
selection, save writes rejects.txt in the output folder, and the next run recomputes nothing."""
from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import yaml

from pipeline.review.server import ReviewServer
from helpers.reviewkit import copy_run, http_request, page_server, raw_request
from helpers.support import read_manifest

REPO = Path(__file__).resolve().parents[2]

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


def save_headers(base: str, server: dict, file: str = "rejects.txt") -> dict[str, str]:
    """What the served page sends with a save: its origin, this launch's token, the version."""
    return {"Origin": base, "X-Review-Token": server["token"], "X-Review-Version": server["versions"][file],
            "Content-Type": "text/plain; charset=utf-8"}


def test_review_server_serves_the_page_and_its_files_only(served, tmp_path):
    demo, base, _ = served
    crop = read_manifest(demo.root)[0]["file"]
    secret = tmp_path / "secret.txt"
    secret.write_text("not for the web\n")
    (demo.root / crop).parent.joinpath("leak.jpg").symlink_to(secret)
    leak = "/" + str(Path(crop).parent / "leak.jpg")
    assert http_request(base, "GET", "/" + crop).status == 200
    assert http_request(base, "GET", "/sheets/index.html").status == 200
    for path in ("/crops/%2e%2e/", "/crops/%2E%2E/manifest.csv", "/crops/..%2fmanifest.csv",
                 "/crops/%2e%2e%2fmanifest.csv", "/crops/%252e%252e/manifest.csv", "/crops/../manifest.csv",
                 "/sheets/..%2f..%2f" + "%2e%2e/" * 8 + "etc/passwd", "/crops/%2e%2e/state/",
                 "/crops/", "/sheets/%2e%2e/run.yaml", "/manifest.csv", "/state/", leak):
        answer = http_request(base, "GET", path)
        assert answer.status == 404, (path, answer)
        assert "manifest" not in answer.text and "not for the web" not in answer.text, path


def test_review_server_answers_only_to_its_own_host_name(served):
    demo, base, _ = served
    port = base.rsplit(":", 1)[1]
    assert http_request(base, "GET", "/sheets/index.html", {"Host": f"localhost:{port}"}).status == 200
    hosts = (f"rebind.attacker.example:{port}", "127.0.0.1", f"127.0.0.2:{port}", "")
    for host in hosts:
        answer = http_request(base, "GET", "/sheets/index.html", {"Host": host})
        assert answer.status == 403 and "answers only to 127.0.0.1" in answer.text, host
    server = page_server(base)
    for host in hosts:
        posted = http_request(base, "POST", "/api/rejects", {**save_headers(base, server), "Host": host},
                              b"x\n")
        assert posted.status == 403, host
    assert not (demo.root / "rejects.txt").exists()


def test_review_server_accepts_saves_from_its_page_only(served):
    demo, base, _ = served
    server = page_server(base)
    own = save_headers(base, server)
    no_token = {k: v for k, v in own.items() if k != "X-Review-Token"}
    for headers in ({**own, "Origin": "http://example.com"}, {**own, "Origin": "null"},
                    {**{k: v for k, v in own.items() if k != "Origin"}, "Referer": "http://example.com/x"},
                    no_token, {**own, "X-Review-Token": "guessed"}):
        answer = http_request(base, "POST", "/api/rejects", headers, b"x\n")
        assert answer.status == 403, (headers, answer)
    assert not (demo.root / "rejects.txt").exists()
    done = http_request(base, "POST", "/api/rejects", own, b"x\n")
    assert done.status == 200 and json.loads(done.text)["count"] == 1
    assert (demo.root / "rejects.txt").read_text() == "x\n"


@pytest.mark.parametrize("length, status", [("-1", 400), ("abc", 400), (None, 411), (str(10**12), 413)])
def test_review_server_answers_a_bad_content_length_in_one_line(served, length, status):
    demo, base, proc = served
    head = "".join(f"{k}: {v}\n" for k, v in save_headers(base, page_server(base)).items())
    head = f"POST /api/rejects HTTP/1.1\nHost: {base.removeprefix('http://')}\n{head}"
    if length is not None:
        head += f"Content-Length: {length}\n"
    answer = raw_request(base, head, b"x\n" * 1000)
    assert answer.status == status and ("Content-Length" in answer.text or "MB" in answer.text), answer
    assert len(answer.text.splitlines()) == 1
    assert not (demo.root / "rejects.txt").exists()
    assert proc.poll() is None and http_request(base, "GET", "/sheets/index.html").status == 200


def test_concurrent_saves_are_all_answered_and_one_wins_whole(served):
    """Eight saves at once, as eight tabs loaded together: each is answered; the first is written
    whole, the others are told the file changed since their page loaded; no temporary file stays."""
    demo, base, _ = served
    headers = save_headers(base, page_server(base))
    bodies = [(f"# save {i}\n" + "".join(f"c{i}_{k:06d}\n" for k in range(20_000))).encode()
              for i in range(8)]
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda b: http_request(base, "POST", "/api/rejects", headers, b), bodies))
    assert sorted(a.status for a in answers) == [200] + [409] * 7, answers
    assert all("changed since this page was loaded" in a.text for a in answers if a.status == 409)
    winner, won = next((b, a) for b, a in zip(bodies, answers) if a.status == 200)
    assert (demo.root / "rejects.txt").read_bytes() == winner
    assert not [p.name for p in demo.root.glob(".rejects.txt*")]
    # the page that saved carries on with the version it was answered
    again = {**headers, "X-Review-Version": json.loads(won.text)["version"]}
    assert http_request(base, "POST", "/api/rejects", again, b"y\n").status == 200


def test_a_save_does_not_overwrite_a_file_changed_since_the_page_loaded(served):
    demo, base, _ = served
    headers = save_headers(base, page_server(base))
    (demo.root / "rejects.txt").write_text("written by hand\n")
    answer = http_request(base, "POST", "/api/rejects", headers, b"x\n")
    assert answer.status == 409 and "rejects.txt was changed since this page was loaded" in answer.text
    assert (demo.root / "rejects.txt").read_text() == "written by hand\n"


def test_no_save_while_a_run_holds_the_output_folder(served):
    demo, base, _ = served
    headers = save_headers(base, page_server(base))
    (demo.root / "run.lock").write_text(json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                                                    "started": "now"}))
    answer = http_request(base, "POST", "/api/rejects", headers, b"x\n")
    assert answer.status == 423 and "is in use by another command (run" in answer.text, answer
    assert not (demo.root / "rejects.txt").exists()
    (demo.root / "run.lock").unlink()
    assert http_request(base, "POST", "/api/rejects", headers, b"x\n").status == 200


@pytest.mark.parametrize("names, rule", [("p1 ../../etc\n", "path separator"),
                                         ("p1 Ann\nBob\n", "cluster Bob is missing"),
                                         ("p1 A\x07nn\n", "control or invisible")])
def test_names_that_would_stop_the_next_run_are_refused(served, names, rule):
    demo, base, _ = served
    headers = save_headers(base, page_server(base), "identities.txt")
    answer = http_request(base, "POST", "/api/identities", headers, names.encode())
    assert answer.status == 400 and rule in answer.text and "nothing saved" in answer.text, answer
    assert not (demo.root / "identities.txt").exists()
    good = http_request(base, "POST", "/api/identities", headers, b"p1 Zhang Ling\n")
    assert good.status == 200 and (demo.root / "identities.txt").read_text() == "p1 Zhang Ling\n"


def test_a_port_in_use_is_one_line_naming_the_port(review_demo, tmp_path):
    import socket

    demo = copy_run(review_demo, tmp_path / "out")
    (tmp_path / "run.yaml").write_text(yaml.safe_dump(demo.raw))
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run([sys.executable, "-m", "pipeline", "review", "run.yaml", "--port",
                               str(port)], cwd=tmp_path, capture_output=True, text=True, timeout=120,
                              env={**os.environ, "PYTHONPATH": str(REPO)})
    assert done.returncode == 2
    assert done.stderr == (f"error: port {port} on 127.0.0.1 is in use by another program; "
                           "choose another with --port N, or leave --port out for a free one\n")


def test_leftover_temporary_files_of_saves_are_removed_at_launch(tmp_path):
    """A save cut short (a killed server) leaves its temporary file; the next launch removes it,
    and nothing else: a user's hidden files stay."""
    ours = [".rejects.txt.4242.tmp", ".identities.txt.k2j3_x.tmp"]
    theirs = [".vim.tmp", ".rejects.txt.swp", "rejects.txt"]
    for name in ours + theirs:
        (tmp_path / name).write_text("x")
    with ReviewServer(tmp_path):
        pass
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(theirs)


def test_the_page_says_when_a_save_would_overwrite_a_newer_file(browser, served):  # noqa: F811
    """Another tab (or an editor) saved rejects.txt after this page loaded: the page says so and
    keeps the selection, nothing is overwritten or downloaded; after a reload the save goes in."""
    demo, base, _ = served
    expect = pytest.importorskip("playwright.sync_api").expect
    context = browser.new_context(accept_downloads=True, viewport={"width": 1280, "height": 900})
    context.route(lambda url: not url.startswith(base), lambda route: route.abort())
    page = context.new_page()
    downloads: list[str] = []
    page.on("download", lambda d: downloads.append(d.suggested_filename))
    try:
        page.goto(base + "/sheets/index.html")
        first = page.locator("#groups figure").first
        chosen = first.get_attribute("data-id")
        first.locator("button.thumb").click()
        (demo.root / "rejects.txt").write_text("saved in another tab\n")
        page.locator("#save").click()
        expect(page.locator("#review-state")).to_contain_text("not saved: rejects.txt was changed since "
                                                              "this page was loaded", timeout=20_000)
        assert (demo.root / "rejects.txt").read_text() == "saved in another tab\n" and downloads == []
        page.reload()
        page.locator("#save").click()
        expect(page.locator("#review-state")).to_contain_text("saved 1 crop id(s)", timeout=20_000)
    finally:
        context.close()
    lines = (demo.root / "rejects.txt").read_text().splitlines()
    assert [line for line in lines if not line.startswith("#")] == [chosen] and downloads == []


def test_captions_show_tenths_when_frames_are_under_a_second_apart(review_demo):
    """The demo samples every 0.5 s: whole seconds would caption two crops alike."""
    from pipeline.review.rows import format_time, time_decimals

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
