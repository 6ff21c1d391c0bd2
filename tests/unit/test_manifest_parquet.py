"""manifest.parquet holds exactly the rows of manifest.jsonl, whatever text the videos' titles
bring, and writing it does not import pandas (0.27 CPU-s of every run's serial end)."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.core.records import MANIFEST_COLUMNS, BY_NAME
from pipeline.steps.manifest import write_manifests

pq = pytest.importorskip("pyarrow.parquet", reason="pyarrow not installed (the parquet extra)")

HOSTILE = ["=cmd|' /C calc'!A0", "line\nbreak\r", "tab\there", 'quote " and \\ backslash',
           "\u2028 separator", "nul \x00 char", "emoji \U0001F600", "é", ""]


def _row(i: int) -> dict:
    """A manifest row with every column filled by its type: hostile text, large and negative
    numbers, infinities, nulls."""
    row = {}
    for k, name in enumerate(MANIFEST_COLUMNS):
        kind = BY_NAME[name].type
        if (i + k) % 5 == 0:
            row[name] = None
        elif kind is int:
            row[name] = [2**62, -7, 0][(i + k) % 3]
        elif kind is float:
            row[name] = [0.1 + 0.2, float("inf"), -1e-310, 3.0][(i + k) % 4]
        else:
            row[name] = HOSTILE[(i + k) % len(HOSTILE)]
    return row


def test_parquet_rows_equal_the_jsonl_rows(tmp_path: Path):
    rows = [_row(i) for i in range(40)]
    assert "manifest.parquet" in write_manifests(tmp_path, rows)
    jsonl = [json.loads(line) for line in (tmp_path / "manifest.jsonl").read_text().splitlines()]
    table = pq.read_table(tmp_path / "manifest.parquet")
    assert table.column_names == list(MANIFEST_COLUMNS)
    assert table.to_pylist() == jsonl == rows


def test_an_empty_manifest_is_an_empty_table_with_the_columns(tmp_path: Path):
    write_manifests(tmp_path, [])
    table = pq.read_table(tmp_path / "manifest.parquet")
    assert table.num_rows == 0 and table.column_names == list(MANIFEST_COLUMNS)


def test_writing_the_manifest_does_not_import_pandas(tmp_path: Path):
    pytest.importorskip("pandas", reason="pandas not installed: nothing to avoid")
    rows = json.dumps([_row(i) for i in range(3)])
    code = ("import json, sys; from pathlib import Path; "
            "from pipeline.steps.manifest import write_manifests; "
            f"write_manifests(Path({str(tmp_path)!r}), []); "
            f"write_manifests(Path({str(tmp_path)!r}), json.loads({rows!r})); "
            "print('pandas' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
