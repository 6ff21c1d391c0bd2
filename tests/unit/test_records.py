"""The crop record (pipeline.core.records) is the one definition of the manifest's columns: the docs
(docs/outputs.md) document exactly those, and the metadata.csv columns are among them."""
from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from pipeline.core import records

REPO = Path(__file__).resolve().parents[2]
OUTPUTS_DOC = REPO / "docs" / "outputs.md"


def readme_manifest_table() -> str:
    """The Markdown table under the "Manifest columns" heading of docs/outputs.md."""
    section = OUTPUTS_DOC.read_text(encoding="utf-8").split("## Manifest columns\n", 1)[1]
    match = re.search(r"^(\|.*\n)+", section, flags=re.M)  # the first run of table lines
    return match.group(0) if match else ""


def test_readme_documents_every_manifest_column_and_no_other() -> None:
    table = readme_manifest_table()
    documented = re.findall(r"^\| (\w+) \|", table, flags=re.M)[1:]  # after the header row
    every = records.manifest_columns(identity=True)
    missing = [c for c in every if c not in documented]
    stale = [c for c in documented if c not in every]
    assert not missing and not stale, f"docs/outputs.md lacks {missing}, documents unknown {stale}"
    assert documented == list(every), "docs/outputs.md lists them in another order"


def test_readme_table_is_the_one_records_makes() -> None:
    expected = records.manifest_table()
    assert readme_manifest_table() == expected, (
        "the 'Manifest columns' table of docs/outputs.md differs from pipeline/records.py; paste:\n"
        + expected)


def test_metadata_columns_are_columns_of_the_record() -> None:
    assert records.METADATA_COLUMNS[0] == "file_name"  # what imagefolder looks for
    assert set(records.METADATA_COLUMNS) == set(records.names(records.METADATA))
    assert len(set(records.METADATA_COLUMNS)) == len(records.METADATA_COLUMNS)


def test_every_column_has_one_name_a_type_and_a_doc() -> None:
    assert len(records.BY_NAME) == len(records.COLUMNS)
    for column in records.COLUMNS:
        assert column.type in (str, int, float) and column.doc and column.outputs, column


def keys_read(path: Path) -> set[str]:
    """The string keys a module reads from dicts: ``row["key"]`` and ``row.get("key")``."""
    keys = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant):
            keys.add(node.slice.value)
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
              and node.func.attr == "get" and node.args and isinstance(node.args[0], ast.Constant)):
            keys.add(node.args[0].value)
    return {key for key in keys if isinstance(key, str)}


@pytest.mark.parametrize("module", ["algo/quality.py", "algo/dedupe.py"])
def test_crop_row_readers_read_only_record_columns(module: str) -> None:
    """These modules work on crop rows only: a column renamed in the record must not leave
    them reading a key that no longer exists."""
    read = keys_read(REPO / "pipeline" / module)
    assert read and read <= set(records.BY_NAME), sorted(read - set(records.BY_NAME))
