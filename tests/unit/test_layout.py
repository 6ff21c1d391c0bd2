"""The output folder's names live in one module (``pipeline/core/layout.py``): a name typed again
elsewhere is a second place to change, and a reader that looks for a file under a name its
writer no longer uses. These tests read ``pipeline/``'s source and fail on such a literal; the
check is also run on a small module that breaks it, so it cannot pass by accident."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

from pipeline.core import layout
from pipeline.core.layout import OutputLayout

PACKAGE = Path(layout.__file__).resolve().parents[1]
LAYOUT = Path(layout.__file__).resolve()

FOLDERS = {layout.VIDEOS, layout.FRAMES, layout.DETECTIONS, layout.CROPS, layout.IDENTITY,
           layout.STATE, layout.DATASET, layout.SHEETS, layout.EXPORTS, layout.SWEEP}
"""Common words too (``frames`` is a count, ``identity`` a stage): flagged only as a path, in
``x / "frames"`` or at the start of ``"frames/..."``."""
FILES = {layout.FRAMES_INDEX, layout.CROPS_INDEX, layout.INFO_SUFFIX, layout.METADATA,
         layout.MANIFEST_CSV, layout.MANIFEST_JSONL, layout.MANIFEST_PARQUET, layout.SUMMARY,
         layout.SHEETS_PAGE, layout.RUN_MARKER, layout.LOCK, layout.REJECTS, layout.NAMES,
         layout.EVALUATION, layout.WARNINGS, layout.FINAL_STEP, layout.AVAILABILITY_CSV,
         *layout.AVAILABILITY}
"""Flagged as a whole string, or as the end of one (``f"{root}/manifest.jsonl"``)."""


def _docstrings(tree: ast.Module) -> set[int]:
    nodes = [tree, *(n for n in ast.walk(tree)
                     if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)))]
    found = {id(n.body[0].value) for n in nodes
             if n.body and isinstance(n.body[0], ast.Expr) and isinstance(n.body[0].value, ast.Constant)}
    # an attribute's docstring: a string statement right after an assignment
    found |= {id(n.value) for n in ast.walk(tree)
              if isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant)}
    return found


def layout_literals(source: str) -> list[str]:
    """``line: text`` of every output-folder name typed in ``source``."""
    tree = ast.parse(source)
    skip = _docstrings(tree)
    hits = []
    for node in ast.walk(tree):
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div):
            right = node.right
            if isinstance(right, ast.Constant) and right.value in FOLDERS:
                hits.append(f"{node.lineno}: / {right.value!r}")
        if not isinstance(node, ast.Constant) or not isinstance(node.value, str) or id(node) in skip:
            continue
        text = node.value
        if (any(text == name or text.endswith(f"/{name}") for name in FILES)
                or text.endswith(layout.INFO_SUFFIX)
                or any(text.startswith(f"{folder}/") for folder in FOLDERS)):
            hits.append(f"{node.lineno}: {text!r}")
    return hits


def test_no_output_name_is_typed_outside_the_layout_module():
    found = {str(path.relative_to(PACKAGE.parent)): hits
             for path in sorted(PACKAGE.rglob("*.py")) if path.resolve() != LAYOUT
             if (hits := layout_literals(path.read_text(encoding="utf-8")))}
    assert found == {}, f"use pipeline.core.layout instead of these literals: {found}"


@pytest.mark.parametrize("line", [
    'path = root / "frames" / sid',
    'path = root / "manifest.jsonl"',
    'name = f"crops/{sid}/{name}"',
    'text = f"{root}/summary.json"',
    'info = root / f"{sid}.info.json"',
    'MARKER = ".pipeline-run.json"',
])
def test_the_check_finds_a_name_typed_again(line):
    assert layout_literals(line)


def test_the_check_leaves_words_and_docs_alone():
    source = ('"""Writes ``manifest.jsonl``."""\n'
              'counts = {"frames": 3, "crops": 1}\n'
              'help = "Default: <output>/rejects.txt when present."\n')
    assert layout_literals(source) == []


def test_paths_are_the_documented_ones(tmp_path):
    """What docs/outputs.md promises, in one place."""
    out = OutputLayout(tmp_path)

    def rel(path: Path) -> str:
        return path.relative_to(tmp_path).as_posix()

    assert rel(out.frames_index("s")) == "frames/s/frames.jsonl"
    assert rel(out.detections("s")) == "detections/s.jsonl"
    assert rel(out.crops_index("s")) == "crops/s/crops.jsonl"
    assert out.crop_rel("s", "s_000000500_0.jpg") == "crops/s/s_000000500_0.jpg"
    assert rel(out.video_info("s")) == "videos/s.info.json"
    assert rel(out.vectors("s")) == "identity/s.npz"
    assert rel(out.marker("crop", "s")) == "state/crop/s.json"
    assert rel(out.error("crop", "s")) == "state/crop/s.error.json"
    assert rel(out.final_step) == "state/final-step.json"
    assert rel(out.listings_dir) == "state/sources"
    assert out.dataset_file_rel("train", "hopper", "x.jpg") == "dataset/train/hopper/x.jpg"
    assert [rel(p) for p in (out.manifest_csv, out.manifest_jsonl, out.manifest_parquet, out.summary,
                             out.run_marker, out.lock, out.rejects, out.names, out.evaluation)] == [
        "manifest.csv", "manifest.jsonl", "manifest.parquet", "summary.json", ".pipeline-run.json",
        "run.lock", "rejects.txt", "identities.txt", "evaluation.json"]
    assert rel(out.export_dir("coco")) == "exports/coco"
    assert OutputLayout(str(tmp_path)) == out  # a str root is a Path too
