"""A small threaded HTTP server for tests, bound to 127.0.0.1 on a free port.

It serves files from a folder (or files registered one by one) with a proper
Content-Type, Content-Length and byte-range support, and lets a test pick a
misbehaviour per path::

    with LocalHTTPServer(tmp_path) as srv:
        srv.error("/gone.mp4", 404)
        srv.drop("/clip.mp4", after_bytes=10_000)        # cut the body, Range requests work
        srv.stall("/slow.mp4", seconds=5)                # headers, then silence
        srv.ignore_range("/norange.mp4")                 # always 200 with the full body
        srv.page("/list.html", "<video src='a.mp4'></video>")
        url = srv.url("/clip.mp4")
        ...
        assert srv.requests_for("/clip.mp4")[-1].range == "bytes=10000-"

Every request is recorded (method, path, Range header, status).  Everything is
bounded in time: a stall never lasts longer than ``MAX_STALL`` seconds and ends
as soon as the server stops; idle connections time out; ``stop()`` closes
open connections and joins every handler thread, so no thread outlives the
``with`` block.  Only the loopback interface is ever used.
"""

from __future__ import annotations

import http.server
import mimetypes
import os
import re
import socket
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["LocalHTTPServer", "RequestRecord", "Route", "MAX_STALL"]

#: upper bound of a ``stall`` in seconds, whatever a test asks for
MAX_STALL = 30.0
#: a handler gives up on a silent client after this many seconds
HANDLER_TIMEOUT = 10.0

_CONTENT_TYPES = {
    ".mp4": "video/mp4",
    ".m4v": "video/mp4",
    ".mov": "video/quicktime",
    ".webm": "video/webm",
    ".mkv": "video/x-matroska",
    ".avi": "video/x-msvideo",
    ".ts": "video/mp2t",
    ".264": "video/h264",
    ".h264": "video/h264",
    ".m4a": "audio/mp4",
    ".mp3": "audio/mpeg",
    ".m3u8": "application/vnd.apple.mpegurl",
    ".mpd": "application/dash+xml",
    ".html": "text/html; charset=utf-8",
    ".htm": "text/html; charset=utf-8",
    ".xml": "application/xml",
    ".rss": "application/rss+xml",
    ".xspf": "application/xspf+xml",
    ".json": "application/json",
    ".txt": "text/plain; charset=utf-8",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".png": "image/png",
    ".onnx": "application/octet-stream",
}


def content_type_for(name: str) -> str:
    ext = os.path.splitext(name)[1].lower()
    if ext in _CONTENT_TYPES:
        return _CONTENT_TYPES[ext]
    guessed, _ = mimetypes.guess_type(name)
    return guessed or "application/octet-stream"


@dataclass
class RequestRecord:
    """One request as the server saw it."""

    method: str
    path: str  # URL path without the query string
    query: str
    range: str | None  # the raw Range header, if any
    headers: dict[str, str]
    status: int | None = None  # status sent (None if the handler failed before)
    time: float = field(default_factory=time.monotonic)


@dataclass
class Route:
    """What the server does for one URL path.

    kind: ``file`` (serve ``file`` or the folder's file), ``error`` (``status``),
    ``drop`` (send ``after_bytes`` of the body then close), ``stall`` (send the
    headers and ``after_bytes`` then wait ``seconds``), ``ignore_range`` (200 and
    the full body even for a Range request), ``body`` (``body`` bytes with
    ``content_type``; pages, feeds, playlists), ``redirect`` (``location``).
    """

    kind: str
    file: Path | None = None
    status: int = 200
    after_bytes: int = 0
    times: int | None = None  # drop: how many requests to cut; None = every full one
    drop_ranged: bool = False  # drop: also cut requests that carry a Range header
    seconds: float = MAX_STALL
    body: bytes | None = None
    content_type: str | None = None
    location: str | None = None
    hits: int = 0  # how often this route's special behaviour fired


class _Handler(http.server.BaseHTTPRequestHandler):
    server_version = "pipeline-test-http/1.0"
    protocol_version = "HTTP/1.0"  # one request per connection: nothing idles
    timeout = HANDLER_TIMEOUT

    # -- plumbing -----------------------------------------------------------
    @property
    def owner(self) -> LocalHTTPServer:
        return self.server.owner  # type: ignore[attr-defined]

    def log_message(self, format, *args):  # noqa: A002 - quiet tests
        pass

    def setup(self):
        super().setup()
        self.owner._track(self.connection, add=True)

    def finish(self):
        try:
            super().finish()
        finally:
            self.owner._track(self.connection, add=False)

    def send_response(self, code, message=None):
        if self._record is not None:
            self._record.status = code
        super().send_response(code, message)

    def do_GET(self):
        self._serve(head=False)

    def do_HEAD(self):
        self._serve(head=True)

    # -- dispatch -----------------------------------------------------------
    _record: RequestRecord | None = None

    def _serve(self, head: bool):
        parts = urllib.parse.urlsplit(self.path)
        path = urllib.parse.unquote(parts.path)
        self._record = RequestRecord(
            method=self.command,
            path=path,
            query=parts.query,
            range=self.headers.get("Range"),
            headers={k: v for k, v in self.headers.items()},
        )
        self.owner._record_request(self._record)
        try:
            self._dispatch(path, head)
        except (TimeoutError, BrokenPipeError, ConnectionResetError, ConnectionAbortedError):
            self.close_connection = True

    def _dispatch(self, path: str, head: bool):
        route = self.owner._route_for(path)
        if route is None:
            route = Route("file")

        if route.kind == "error":
            route.hits += 1
            return self._send_error(route.status)
        if route.kind == "redirect":
            route.hits += 1
            self.send_response(route.status or 302)
            self.send_header("Location", route.location or "/")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if route.kind == "body":
            data = route.body or b""
            ctype = route.content_type or content_type_for(path)
            return self._send_bytes(data, ctype, head, allow_range=True)

        file = route.file or self.owner._file_for(path)
        if file is None or not file.is_file():
            return self._send_error(404)
        data = file.read_bytes()
        ctype = route.content_type or content_type_for(file.name)

        if route.kind == "ignore_range":
            route.hits += 1
            return self._send_bytes(data, ctype, head, allow_range=False)
        if route.kind == "drop" and self._should_drop(route):
            return self._send_cut(data, ctype, route.after_bytes)
        if route.kind == "stall":
            route.hits += 1
            return self._send_stall(data, ctype, route)
        return self._send_bytes(data, ctype, head, allow_range=True)

    def _should_drop(self, route: Route) -> bool:
        with self.owner._lock:
            if self._record.range and not route.drop_ranged:
                return False
            if route.times is not None and route.hits >= route.times:
                return False
            route.hits += 1
            return True

    # -- responses ----------------------------------------------------------
    def _send_error(self, status: int):
        body = f"{status} {self.responses.get(status, ('Error',))[0]}\n".encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _send_bytes(self, data: bytes, ctype: str, head: bool, allow_range: bool):
        size = len(data)
        rng = self._record.range if allow_range else None
        if rng:
            span = _parse_range(rng, size)
            if span == "unsatisfiable":
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{size}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            if span is not None:
                start, end = span
                self.send_response(206)
                self.send_header("Content-Type", ctype)
                self.send_header("Accept-Ranges", "bytes")
                self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
                self.send_header("Content-Length", str(end - start + 1))
                self.end_headers()
                if not head:
                    self.wfile.write(data[start:end + 1])
                return
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        if allow_range:
            self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Length", str(size))
        self.end_headers()
        if not head:
            self.wfile.write(data)

    def _send_cut(self, data: bytes, ctype: str, after_bytes: int):
        """Promise the full length (of the requested range, if any), send
        ``after_bytes`` of it, then close the connection."""
        span = _parse_range(self._record.range, len(data)) if self._record.range else None
        if span == "unsatisfiable":
            span = None
        if span is not None:
            start, end = span
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{end}/{len(data)}")
            data = data[start:end + 1]
        else:
            self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data[:max(0, after_bytes)])
        self.close_connection = True
        try:  # make the client see the end of the stream right now
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def _send_stall(self, data: bytes, ctype: str, route: Route):
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD" and route.after_bytes:
            self.wfile.write(data[:route.after_bytes])
        self.owner._stopping.wait(min(max(route.seconds, 0.0), MAX_STALL))
        self.close_connection = True


_RANGE_RE = re.compile(r"^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$", re.I)


def _parse_range(header: str, size: int):
    """``(start, end)`` inclusive, ``None`` to ignore the header, or ``"unsatisfiable"``.

    Only a single range is supported; anything else is ignored (full 200 body),
    which is what RFC 9110 allows a server to do.
    """
    m = _RANGE_RE.match(header)
    if not m:
        return None
    first, last = m.groups()
    if first == "" and last == "":
        return None
    if first == "":  # suffix range: the last N bytes
        n = int(last)
        if n == 0:
            return "unsatisfiable"
        return max(0, size - n), size - 1
    start = int(first)
    end = size - 1 if last == "" else min(int(last), size - 1)
    if start >= size or end < start:
        return "unsatisfiable"
    return start, end


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = False  # joined in server_close()
    block_on_close = True
    allow_reuse_address = True

    def handle_error(self, request, client_address):  # noqa: D401 - quiet
        pass


class LocalHTTPServer:
    """Threaded HTTP server on 127.0.0.1:<free port> for tests; a context manager."""

    def __init__(self, root: str | os.PathLike | None = None):
        self.root = Path(root) if root is not None else None
        self.requests: list[RequestRecord] = []
        self._routes: dict[str, Route] = {}
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._conns: set[socket.socket] = set()
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ------------------------------------------------------------
    def start(self) -> LocalHTTPServer:
        if self._httpd is not None:
            return self
        self._stopping.clear()
        self._httpd = _Server(("127.0.0.1", 0), _Handler)
        self._httpd.owner = self  # type: ignore[attr-defined]
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
            name=f"test-http-{self.port}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is None:
            return
        self._stopping.set()  # wakes stalled handlers
        self._httpd.shutdown()  # ends serve_forever
        with self._lock:
            conns = list(self._conns)
        for c in conns:  # unblock handlers waiting on a silent client
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._httpd.server_close()  # joins handler threads
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._httpd = None
        self._thread = None

    def __enter__(self) -> LocalHTTPServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- addresses ------------------------------------------------------------
    @property
    def port(self) -> int:
        if self._httpd is None:
            raise RuntimeError("server not started")
        return self._httpd.server_address[1]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, path: str = "/") -> str:
        if not path.startswith("/"):
            path = "/" + path
        return self.base_url + urllib.parse.quote(path, safe="/?=&%:")

    # -- routes ---------------------------------------------------------------
    def _set(self, path: str, route: Route) -> Route:
        if not path.startswith("/"):
            path = "/" + path
        with self._lock:
            self._routes[path] = route
        return route

    def add_file(self, path: str, file: str | os.PathLike, content_type: str | None = None) -> Route:
        """Serve ``file`` (anywhere on disk) at ``path``; normal, range-capable serving."""
        return self._set(path, Route("file", file=Path(file), content_type=content_type))

    def error(self, path: str, status: int = 404) -> Route:
        """Answer ``path`` with ``status`` (404, 403, 500, ...) and a short text body."""
        return self._set(path, Route("error", status=status))

    def not_found(self, path: str) -> Route:
        return self.error(path, 404)

    def forbidden(self, path: str) -> Route:
        return self.error(path, 403)

    def server_error(self, path: str) -> Route:
        return self.error(path, 500)

    def drop(self, path: str, after_bytes: int, *, times: int | None = None,
             only_first: bool = False, drop_ranged: bool = False,
             file: str | os.PathLike | None = None) -> Route:
        """Send headers with the full Content-Length, then ``after_bytes`` of the
        body, then close the connection.

        By default every request *without* a Range header is cut and requests
        with one are served properly (206), so a client that resumes finishes.
        ``only_first=True`` (same as ``times=1``) cuts only the first such request;
        ``times=N`` the first N.  ``drop_ranged=True`` cuts ranged requests too.
        Note that yt-dlp's generic extractor first sends a probe GET (it reads
        the headers only) before the download's own GET: with ``times=1`` the
        probe uses up the drop.
        """
        if only_first:
            times = 1
        return self._set(path, Route("drop", after_bytes=after_bytes, times=times,
                                     drop_ranged=drop_ranged,
                                     file=Path(file) if file else None))

    def stall(self, path: str, seconds: float = MAX_STALL, *, after_bytes: int = 0,
              file: str | os.PathLike | None = None) -> Route:
        """Send the headers (full Content-Length) and ``after_bytes`` of the body,
        then go silent for ``seconds`` (at most ``MAX_STALL``; ends at stop())."""
        return self._set(path, Route("stall", seconds=min(seconds, MAX_STALL),
                                     after_bytes=after_bytes,
                                     file=Path(file) if file else None))

    def ignore_range(self, path: str, file: str | os.PathLike | None = None) -> Route:
        """Always answer 200 with the full body, ignoring any Range header."""
        return self._set(path, Route("ignore_range", file=Path(file) if file else None))

    def page(self, path: str, body: str | bytes,
             content_type: str = "text/html; charset=utf-8") -> Route:
        """Serve ``body`` at ``path`` (an HTML page, an RSS feed, a playlist...)."""
        data = body.encode("utf-8") if isinstance(body, str) else bytes(body)
        return self._set(path, Route("body", body=data, content_type=content_type))

    def redirect(self, path: str, location: str, status: int = 302) -> Route:
        return self._set(path, Route("redirect", location=location, status=status))

    def clear_routes(self) -> None:
        with self._lock:
            self._routes.clear()

    # -- request log ----------------------------------------------------------
    def requests_for(self, path: str) -> list[RequestRecord]:
        with self._lock:
            return [r for r in self.requests if r.path == path]

    def ranges_for(self, path: str) -> list[str | None]:
        """The Range header of each GET of ``path``, in order (None = no Range)."""
        return [r.range for r in self.requests_for(path) if r.method == "GET"]

    def clear_requests(self) -> None:
        with self._lock:
            self.requests.clear()

    # -- internals ------------------------------------------------------------
    def _record_request(self, rec: RequestRecord) -> None:
        with self._lock:
            self.requests.append(rec)

    def _route_for(self, path: str) -> Route | None:
        with self._lock:
            return self._routes.get(path)

    def _file_for(self, path: str) -> Path | None:
        if self.root is None:
            return None
        root = self.root.resolve()
        candidate = (root / path.lstrip("/")).resolve()
        if candidate != root and root not in candidate.parents:
            return None  # no escaping the folder with ../
        return candidate

    def _track(self, conn: socket.socket, add: bool) -> None:
        with self._lock:
            if add:
                self._conns.add(conn)
            else:
                self._conns.discard(conn)
