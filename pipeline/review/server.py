"""``python -m pipeline review``: the review page served on 127.0.0.1, saving ``rejects.txt`` (and
``identities.txt``, the names given to person clusters) itself.

The page is the same ``sheets/index.html`` a run writes (it also works opened from disk, where
saving downloads the file). Served, its save button POSTs the list to ``/api/rejects`` and the
server writes ``<output>/rejects.txt`` atomically (cluster names: ``/api/identities`` writes
``identities.txt``, keeping its lines for names the page did not show), so there is no file to
move; the next run applies it without recomputing anything.

What the server answers, and why (docs/review.md has the table):

- files only, and only the regular files whose real path (decoded, symlinks resolved) lies in
  ``sheets/`` or ``crops/``: the page and the thumbnails it links. Never a directory listing, so
  manifests, state and the links of ``videos/`` to source files elsewhere stay unread;
- only requests naming this server (``Host: 127.0.0.1:<port>`` or ``localhost:<port>``): a web
  page whose host name an attacker rebinds to 127.0.0.1 reads nothing;
- a save only from the page itself: same origin, and the random token of this launch, which the
  served page carries (another page open in the same browser cannot read it, so cannot save);
- a body with a valid ``Content-Length`` up to ``MAX_BODY``, as UTF-8; cluster names that break
  the run's label rules are refused with the rule, so a save can never stop the next run;
- one save at a time (a lock, and the output folder's run lock: no save under a running run),
  written to a unique temporary name and renamed; a file changed since the page was loaded is
  not overwritten (409), the page says so.
"""
from __future__ import annotations

import hmac
import html
import http.server
import json
import mimetypes
import re
import secrets
import shutil
import socket
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from ..steps.names import NAMES_FILE
from ..state.lock import RunLock
from ..steps.names import IdentityError, parse_names
from .saving import SAVES, Refused, Saver, remove_leftovers

HOST = "127.0.0.1"
SERVED = ("sheets", "crops")  # the page and the thumbnails it links: nothing else is read
INDEX = "/sheets/index.html"
MAX_BODY = 16 * 1024 * 1024  # a rejects list of ~500 000 crop ids
TOKEN_HEADER = "X-Review-Token"
VERSION_HEADER = "X-Review-Version"  # the file's version the page was loaded with
LINGER_S = 1.0  # how long a refused request's unread body is drained, so the answer arrives


# ----------------------------------------------------------------------------- what is answered

def served_file(root: Path, url_path: str) -> Path | None:
    """The file a GET of ``url_path`` may read, or None. The path is percent-decoded once (as a
    browser encodes it once: ``%252e`` stays the name ``%2e``), then resolved with its symlinks,
    and must be a regular file inside one of the ``SERVED`` folders, themselves resolved."""
    decoded = unquote(url_path, errors="strict")
    parts = decoded.lstrip("/").split("/")
    if "\x00" in decoded or parts[0] not in SERVED:
        return None
    try:
        real = (root / decoded.lstrip("/")).resolve(strict=True)
        allowed = [(root / name).resolve(strict=True) for name in SERVED if (root / name).exists()]
    except (OSError, RuntimeError):  # missing, or a symlink loop
        return None
    if not real.is_file() or not any(real.is_relative_to(folder) for folder in allowed):
        return None
    return real


def own_hosts(port: int) -> set[str]:
    """The ``Host`` values that name this server (it listens on 127.0.0.1 only)."""
    return {f"127.0.0.1:{port}", f"localhost:{port}"}


def check_host(host: str | None, port: int) -> None:
    """Refuse a request that does not name this server: under DNS rebinding, a page of another
    site reaches 127.0.0.1 with its own host name in ``Host``."""
    if (host or "").strip().lower() not in own_hosts(port):
        raise Refused(403, f"this server answers only to 127.0.0.1:{port} or localhost:{port}")


def check_origin(origin: str | None, referer: str | None, port: int) -> None:
    """A save comes from the page's own origin: ``Origin`` (every browser sends it on a POST)
    must be ours; without it, a ``Referer`` must be ours too."""
    origins = {f"http://{h}" for h in own_hosts(port)}
    if origin is not None and origin not in origins:
        raise Refused(403, "saves are accepted from the review page only")
    if origin is None and referer and not any(referer.startswith(o + "/") for o in origins):
        raise Refused(403, "saves are accepted from the review page only")


def check_token(given: str | None, token: str) -> None:
    """The launch's token, which only the served page holds (compared in constant time)."""
    if not hmac.compare_digest((given or "").encode(), token.encode()):
        raise Refused(403, "this save does not come from the page this server serves "
                           "(reload the page, then save again)")


def body_length(values: list[str], cap: int = MAX_BODY) -> int:
    """The one ``Content-Length`` of a POST: digits only, at most ``cap``."""
    if not values:
        raise Refused(411, "a save needs a Content-Length")
    if len(values) > 1 or not re.fullmatch(r"[0-9]{1,20}", values[0].strip()):
        raise Refused(400, "Content-Length must be one whole number of bytes")
    length = int(values[0])
    if length > cap:
        raise Refused(413, f"the body is over {cap // (1024 * 1024)} MB")
    return length


def posted_text(data: bytes, name: str) -> str:
    """The posted file as text: UTF-8 (what the page sends); cluster names checked by the run's
    own rules (``identity.parse_names``), so the next run does not stop on what was saved."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise Refused(400, f"{name} must be sent as UTF-8 text") from None
    if name == NAMES_FILE:
        try:
            parse_names(text, name)
        except IdentityError as exc:
            raise Refused(400, f"nothing saved: {exc}") from None
    return text


def page_with_server(page: str, token: str, versions: dict[str, str]) -> str:
    """The review page as served: a ``<meta name="review-server">`` holding this launch's token
    and the version of each saved file, which the page's script sends with its saves. The page
    on disk has none, and so downloads instead."""
    content = html.escape(json.dumps({"token": token, "versions": versions}), quote=True)
    return page.replace("<head>\n", f"<head>\n<meta name=\"review-server\" content=\"{content}\">\n", 1)


# ----------------------------------------------------------------------------- saving


# ----------------------------------------------------------------------------- the server

class _Handler(http.server.BaseHTTPRequestHandler):
    """The page, the files it links, and the save endpoints (no inherited file serving: what is
    read is exactly what ``served_file`` allows)."""

    timeout = 30  # a client that stops sending is dropped, not waited for
    root: Path
    token: str
    saver: Saver
    on_save: Callable[[str, int], None] = staticmethod(lambda _f, _n: None)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (the stdlib's name)
        pass  # the console shows what the user does (saves), not every thumbnail request

    def _send(self, status: int, body: bytes | str, ctype: str = "text/plain; charset=utf-8",
              extra: dict[str, str] | None = None) -> None:
        data = body.encode() if isinstance(body, str) else body
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")  # a rebuilt page is never served stale
        self.send_header("X-Content-Type-Options", "nosniff")
        for key, value in (extra or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)

    @property
    def port(self) -> int:
        return self.server.server_address[1]

    def do_GET(self) -> None:  # noqa: N802 (the stdlib's name)
        try:
            check_host(self.headers.get("Host"), self.port)
        except Refused as exc:
            self._send(exc.status, exc.reason + "\n")
            return
        path = urlsplit(self.path).path
        if path in ("/", "/sheets", "/sheets/", "/index.html"):
            self._send(302, "", extra={"Location": INDEX})
            return
        try:
            file = served_file(self.root, path)
        except UnicodeDecodeError:
            file = None
        if file is None:
            self._send(404, "not found\n")
            return
        if file == self.root / INDEX.lstrip("/"):
            page = page_with_server(file.read_text(encoding="utf-8"), self.token, self.saver.versions())
            self._send(200, page, "text/html; charset=utf-8")
            return
        self.send_response(200)
        self.send_header("Content-Type", mimetypes.guess_type(file.name)[0] or "application/octet-stream")
        self.send_header("Content-Length", str(file.stat().st_size))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.end_headers()
        with open(file, "rb") as f:
            shutil.copyfileobj(f, self.wfile)

    def do_HEAD(self) -> None:  # noqa: N802 (the stdlib's name)
        self._send(405, "")

    def do_POST(self) -> None:  # noqa: N802 (the stdlib's name)
        try:
            name, count, version = self._save()
        except Refused as exc:
            self._send(exc.status, exc.reason + "\n", extra={"Connection": "close"})
            self._linger()
            return
        self.on_save(name, count)
        self._send(200, json.dumps({"file": name, "count": count, "version": version}),
                   "application/json")

    def _save(self) -> tuple[str, int, str]:
        """Every check, in the order that reads no body from a request that names another host
        or a wrong length; then the body; then where it comes from; then the write."""
        check_host(self.headers.get("Host"), self.port)
        name = SAVES.get(urlsplit(self.path).path)
        if name is None:
            raise Refused(404, "not found")
        if self.headers.get("Transfer-Encoding"):
            raise Refused(411, "a save needs a Content-Length, not Transfer-Encoding")
        length = body_length(self.headers.get_all("Content-Length") or [])
        try:
            data = self.rfile.read(length)
        except OSError:  # the client stopped sending (``timeout``) or went away
            raise Refused(408, f"the body did not arrive within {self.timeout} s") from None
        if len(data) != length:
            raise Refused(400, "the body ended before its Content-Length")
        check_origin(self.headers.get("Origin"), self.headers.get("Referer"), self.port)
        check_token(self.headers.get(TOKEN_HEADER), self.token)
        text = posted_text(data, name)
        version = self.saver.save(name, text, self.headers.get(VERSION_HEADER))
        count = sum(1 for line in text.splitlines() if line.split("#", 1)[0].strip())
        return name, count, version

    def _linger(self) -> None:
        """Read what a refused client is still sending (briefly, up to ``MAX_BODY``): closing a
        socket with unread data resets the connection, and the client would lose the answer."""
        try:
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_WR)
            self.connection.settimeout(LINGER_S)
            left = MAX_BODY
            while left > 0 and (chunk := self.connection.recv(min(left, 65536))):
                left -= len(chunk)
        except OSError:
            pass  # gone already, or too slow: the answer was sent


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A browser that drops a thumbnail it no longer needs is no error worth a traceback."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class ReviewServer:
    """A threaded HTTP server for one output folder; ``port`` 0 takes a free one. Each launch has
    its own random token, which only the page it serves carries."""

    def __init__(self, root: Path, port: int = 0,
                 on_save: Callable[[str, int], None] | None = None):
        self.root = Path(root)
        with RunLock(self.root, "review"):
            remove_leftovers(self.root)
        self.token = secrets.token_urlsafe(32)
        handler = type("Handler", (_Handler,), {
            "on_save": staticmethod(on_save or (lambda _f, _n: None)), "root": self.root.resolve(),
            "token": self.token, "saver": Saver(self.root)})
        self.httpd = _Server((HOST, port), handler)
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}{INDEX}"

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
