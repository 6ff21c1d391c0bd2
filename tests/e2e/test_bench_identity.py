"""scripts/bench.py's identity section: the embedding cost per face crop, printed per model."""
from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.bench
@pytest.mark.slow  # scripts/bench.py's identity section on the dlib weights
def test_identity_section_prints_ms_per_embedding(capsys, shared_models, monkeypatch, tmp_path):
    pytest.importorskip("dlib", reason="the identity extra (dlib-bin) is not installed")
    if not (shared_models / "dlib_face_recognition_resnet_model_v1.dat").is_file():
        pytest.skip(f"dlib weights not in {shared_models}")
    monkeypatch.setenv("PIPELINE_MODELS", str(tmp_path / "empty-cache"))  # the shared files serve
    spec = importlib.util.spec_from_file_location("bench", REPO / "scripts" / "bench.py")
    bench = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "bench", bench)  # its dataclasses look their module up
    spec.loader.exec_module(bench)
    bench.bench_identity(repeat=1, frames=2)
    out = capsys.readouterr().out
    assert re.search(r"identity: embedding cost per face crop \(\d+ faces in 2 frames", out), out
    assert re.search(r"  dlib: \d+\.\d ms a face \(CPU \d+\.\d ms\)", out), out
    assert "  sface: skipped, weights not cached (python -m pipeline models fetch sface)" in out
