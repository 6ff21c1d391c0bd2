"""``python -m pipeline review``: the review page served on 127.0.0.1, saving ``rejects.txt`` (and
``identities.txt``, the names given to person clusters) itself.

The page is the same ``sheets/index.html`` a run writes (it also works opened from disk, where
saving downloads the file). Served, its save button POSTs the list to ``/api/rejects`` and the
server writes ``<output>/rejects.txt`` atomically (cluster names: ``/api/identities`` writes
``identities.txt``, keeping its lines for names the page did not show), so there is no file to
move; the next run
applies it without recomputing anything.

Only ``sheets/`` and ``crops/`` are served, only to this machine, and a save is accepted only from
the page's own origin (another web page open in the same browser cannot write the file).
"""
from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .dataset import NAMES_FILE, REJECTS_FILE, decode_text
from .state import write_atomic

HOST = "127.0.0.1"
SERVED = ("/sheets/", "/crops/")
MAX_BODY = 16 * 1024 * 1024  # a rejects list of ~500 000 crop ids
SAVES = {"/api/rejects": REJECTS_FILE, "/api/identities": NAMES_FILE}  # endpoint: file written


def keep_other_names(text: str, path: Path) -> str:
    """The page's names, then the lines of the names file already there that name what the page
    did not: a track (``<source id>:<track id>``, written by hand; the page names whole clusters)
    or a cluster named in an earlier visit and not yet applied by a run (the page shows the names
    of the manifest). Without this, naming one cluster would erase those names."""
    try:
        old = decode_text(path.read_bytes(), str(path))
    except (OSError, ValueError):
        return text  # no file yet, or one a run refuses anyway: the page's names alone

    def key(line: str) -> str | None:
        item = line.split("#", 1)[0].split()
        return item[0] if item else None

    given = {key(line) for line in text.splitlines()} - {None}
    others = [line for line in old.splitlines() if key(line) is not None and key(line) not in given]
    if not others:
        return text
    return (text.rstrip("\n") + "\n# kept from the file before this save:\n"
            + "\n".join(others) + "\n")


class _Handler(http.server.SimpleHTTPRequestHandler):
    """Static files of the output folder (sheets and crops), and the save endpoint."""

    on_save: Callable[[str, int], None] = staticmethod(lambda _f, _n: None)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (the stdlib's name)
        pass  # the console shows what the user does (saves), not every thumbnail request

    def _send(self, status: int, body: str, ctype: str = "text/plain; charset=utf-8") -> None:
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:  # noqa: N802 (the stdlib's name)
        path = urlsplit(self.path).path
        if path in ("/", "/sheets", "/index.html"):
            self.send_response(302)
            self.send_header("Location", "/sheets/index.html")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if not path.startswith(SERVED) or "/." in path:
            self._send(404, "not found")
            return
        super().do_GET()

    def do_HEAD(self) -> None:  # noqa: N802 (the stdlib's name)
        self._send(405, "")

    def end_headers(self) -> None:
        self.send_header("Cache-Control", "no-store")  # a rebuilt page is never served stale
        super().end_headers()

    def do_POST(self) -> None:  # noqa: N802 (the stdlib's name)
        name = SAVES.get(urlsplit(self.path).path)
        if name is None:
            self._send(404, "not found")
            return
        host, port = self.server.server_address[:2]
        if self.headers.get("Origin") != f"http://{host}:{port}":
            self._send(403, "saves are accepted from the review page only")
            return
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            self._send(413, f"{name} too large")
            return
        text = self.rfile.read(length).decode("utf-8", "replace")
        root = Path(self.directory)
        count = sum(1 for line in text.splitlines() if line.split("#", 1)[0].strip())
        if name == NAMES_FILE:
            text = keep_other_names(text, root / name)
        write_atomic(root / name, text)
        self.on_save(name, count)
        self._send(200, json.dumps({"file": name, "count": count}), "application/json")


class ReviewServer:
    """A threaded HTTP server for one output folder; ``port`` 0 takes a free one."""

    def __init__(self, root: Path, port: int = 0,
                 on_save: Callable[[str, int], None] | None = None):
        handler = type("Handler", (_Handler,),
                       {"on_save": staticmethod(on_save or (lambda _f, _n: None))})
        self.root = Path(root)
        self.httpd = http.server.ThreadingHTTPServer(
            (HOST, port), partial(handler, directory=str(self.root)))
        self.httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}/sheets/index.html"

    def serve_forever(self) -> None:
        self.httpd.serve_forever()

    def start(self) -> ReviewServer:
        self._thread = threading.Thread(target=self.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        if self._thread is not None:
            self._thread.join()

    def __enter__(self) -> ReviewServer:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()
