"""Names as a user meets them, through the CLI in a temp working folder: a config without
``name:`` is named after its file, so two of them in one folder write to two output folders;
a file's name in ``availability.csv`` is its true name, whatever characters it holds."""
from __future__ import annotations

import csv
import os
import shutil
import unicodedata
from pathlib import Path
from urllib.parse import unquote_to_bytes

import pytest

from helpers.support import DEMO, cli, read_manifest

pytestmark = pytest.mark.slow  # commands in subprocesses

CONFIG = "sources: [{path: clip.mp4}]\nsample: {every: 3.0}\n"


def _clip(work: Path) -> None:
    shutil.copy(DEMO / "hopper_pan.mp4", work / "clip.mp4")


def _output_line(done) -> str:
    assert done.returncode == 0, done.stderr
    return done.stdout.split("; output ", 1)[1].split(")\n", 1)[0]


def test_two_configs_without_a_name_write_to_two_folders(tmp_path):
    _clip(tmp_path)
    for stem in ("faces", "more"):
        (tmp_path / f"{stem}.yaml").write_text(CONFIG)
        done = cli("run", f"{stem}.yaml", "-q", cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        assert f"output: {tmp_path / 'data' / stem}/" in done.stdout
        assert read_manifest(tmp_path / "data" / stem), "each config has its own crops"
    assert sorted(p.name for p in (tmp_path / "data").iterdir()) == ["faces", "more"]


@pytest.mark.parametrize("stem, name", [
    ("pilots", "pilots"), ("2024", "2024"), ("my run", "my run"),
    (unicodedata.normalize("NFD", "pilote_été"), "pilote_été"),  # one folder, however typed
    ("CON", "run"), ("a:b", "run"), (".hidden", "run"), ("-x", "run"), ("x" * 65, "run"),
    ("tab\there", "run"), ("new\nline", "run"), ("dots..", "run"), ("end.", "run"),
])
def test_the_default_name_is_the_file_name_when_it_is_a_label(tmp_path, stem, name):
    """A stem that is no label (reserved on Windows, hidden, too long, control characters) falls
    back to ``run`` rather than making a folder some system cannot hold."""
    _clip(tmp_path)
    (tmp_path / f"{stem}.yaml").write_text(CONFIG)
    assert _output_line(cli("validate", f"./{stem}.yaml", cwd=tmp_path)) == f"data/{name}"


def test_a_name_in_the_config_wins_over_the_file_name(tmp_path):
    _clip(tmp_path)
    (tmp_path / "pilots.yaml").write_text("name: jets\n" + CONFIG)
    assert _output_line(cli("validate", "pilots.yaml", cwd=tmp_path)) == "data/jets"


def test_a_config_from_stdin_is_named_after_the_file_behind_it(tmp_path):
    """``run /dev/stdin < pilots.yaml`` is the config pilots.yaml; piped text has no file name."""
    _clip(tmp_path)
    (tmp_path / "pilots.yaml").write_text(CONFIG)
    with open(tmp_path / "pilots.yaml") as f:
        redirected = cli("validate", "/dev/stdin", cwd=tmp_path, stdin=f)
    assert _output_line(redirected) == "data/pilots"
    piped = cli("validate", "/dev/stdin", cwd=tmp_path, input=CONFIG)
    assert _output_line(piped) == "data/run"


@pytest.mark.parametrize("file, name", [("2024.yaml", "2024"), ("null.yaml", "null"),
                                        ("my cfg!.yaml", "my-cfg"), ("CON.yaml", "run")])
def test_init_writes_the_name_a_config_without_one_would_take(tmp_path, file, name):
    """Even a name YAML would read as a number or null (the starter quotes it)."""
    assert cli("init", file, cwd=tmp_path).returncode == 0
    _clip(tmp_path / "videos")
    assert _output_line(cli("validate", file, cwd=tmp_path)) == f"data/{name}"


def test_availability_csv_names_a_local_file_exactly(tmp_path):
    """A carriage return, a line feed, a tab and a byte that is not UTF-8 in a file name: its
    ``url`` cell is the ``file://`` URL the manifest gives (one line, every byte spelled out),
    not a carriage return turned into a line feed; a missing file's entry says its name too."""
    name = b"take\r1\nb\tc\xff.mp4"
    clip = tmp_path / "videos" / os.fsdecode(name)
    clip.parent.mkdir()
    shutil.copy(DEMO / "hopper_pan.mp4", clip)
    missing = tmp_path / "gone\r.mp4"
    (tmp_path / "c.yaml").write_text("sources: [{path: videos/}, {path: \"gone\\r.mp4\"}]\n"
                                     "sample: {every: 3.0}\n")
    done = cli("run", "c.yaml", "-q", cwd=tmp_path)
    assert done.returncode == 1, done.stderr  # the missing file fails, the other is done
    with open(tmp_path / "data" / "c" / "availability.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert [(r["url"], r["state"]) for r in rows] == [(clip.as_uri(), "done"), (missing.as_uri(), "failed")]
    assert unquote_to_bytes(rows[0]["url"]) == b"file://" + os.fsencode(clip)
    assert "%0D1%0Ab%09c%FF.mp4" in rows[0]["url"]
    assert {r["source_url"] for r in read_manifest(tmp_path / "data" / "c")} == {rows[0]["url"]}
