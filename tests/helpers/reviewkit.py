"""Helpers for the sheet and review-page tests: a demo run to copy, a headless Chromium and
pages opened in it.

One real run of the demo videos is made per test session (``review_demo`` in conftest.py); a test
that changes the output works on a copy (``copy_run``), which a rerun resumes with every stage
skipped because fingerprints never depend on the output folder.
"""
from __future__ import annotations

import html
import http.client
import json
import os
import re
import shutil
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.config.load import parse_config
from pipeline.config.schema import Config

CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser")
# Flags that keep a headless Chromium off the network and quiet in a container.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage"]


@dataclass(frozen=True)
class DemoRun:
    """A finished run: its raw config (to derive others from) and its output folder."""

    raw: dict
    root: Path

    def config(self, **overrides: Any) -> Config:
        return parse_config({**self.raw, **overrides})


def copy_run(base: DemoRun, dest: Path) -> DemoRun:
    """The same run in another output folder (same videos, so nothing needs recomputing)."""
    shutil.copytree(base.root, dest, symlinks=True)
    (dest / "run.lock").unlink(missing_ok=True)
    return DemoRun({**base.raw, "output": str(dest)}, dest)


def chromium_path() -> str | None:
    """The Debian Chromium (or $PIPELINE_CHROMIUM), if installed."""
    env = os.environ.get("PIPELINE_CHROMIUM")
    if env:
        return env if os.access(env, os.X_OK) else None
    for candidate in CHROMIUM_CANDIDATES:
        if os.access(candidate, os.X_OK):
            return candidate
    return shutil.which("chromium")


@dataclass
class Opened:
    """A page with everything it complained about."""

    page: Any
    errors: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)


def open_page(browser, index: Path, height: int = 900) -> Opened:
    """``index`` (a file) in a new browser context that aborts every request leaving the machine;
    console errors and warnings, page errors, failed requests and dialogs are collected."""
    context = browser.new_context(accept_downloads=True, viewport={"width": 1280, "height": height})
    context.route(re.compile(r"^(https?|wss?|ftp)://"), lambda route: route.abort())
    page = context.new_page()
    opened = Opened(page)
    page.on("console", lambda m: opened.errors.append(f"console.{m.type}: {m.text}")
            if m.type in ("error", "warning", "assert") else None)
    page.on("pageerror", lambda e: opened.errors.append(f"pageerror: {e}"))
    page.on("requestfailed", lambda r: opened.errors.append(f"requestfailed: {r.url} {r.failure}"))

    def on_dialog(d):
        opened.dialogs.append(f"{d.type}: {d.message}")
        d.dismiss()

    page.on("dialog", on_dialog)
    page.goto(index.as_uri())
    page.wait_for_load_state("load")
    return opened


def close(opened: Opened) -> None:
    opened.page.context.close()


@dataclass(frozen=True)
class Answer:
    """What the review server answered: status and body text (a refusal says why in it)."""

    status: int
    text: str


def http_request(base: str, method: str, path: str, headers: dict[str, str] | None = None,
                 body: bytes | None = None) -> Answer:
    """One request sent as written (``http.client`` neither decodes nor normalises ``path``)."""
    host, port = base.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return Answer(response.status, response.read().decode("utf-8", "replace"))
    finally:
        conn.close()


def raw_request(base: str, head: str, body: bytes = b"") -> Answer:
    """A request written byte by byte (headers ``http.client`` would fix, such as a negative
    ``Content-Length``); the answer read until the server closes."""
    host, port = base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(head.replace("\n", "\r\n").encode() + b"\r\n" + body)
        sock.shutdown(socket.SHUT_WR)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    status_line, _, rest = data.partition(b"\r\n")
    return Answer(int(status_line.split()[1]), rest.partition(b"\r\n\r\n")[2].decode())


def page_server(base: str) -> dict[str, Any]:
    """The token and file versions the served page carries (``<meta name="review-server">``)."""
    page = http_request(base, "GET", "/sheets/index.html").text
    match = re.search(r'<meta name="review-server" content="([^"]*)">', page)
    assert match, "the served page carries no review-server meta tag"
    return json.loads(html.unescape(match.group(1)))
