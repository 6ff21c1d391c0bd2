"""Splits in whole runs: a run says which split is empty and why, once."""
from __future__ import annotations

import pytest


@pytest.mark.slow  # a whole run
def test_a_run_says_which_split_is_empty_and_why(tmp_path):
    from helpers.demo import make_config

    from pipeline.config.load import parse_config
    from pipeline.runner.run import run

    raw = make_config(tmp_path, split={"train": 0.8, "val": 0.1, "test": 0.1}, sample={"every": 2.0})
    lines: list[str] = []
    report = run(parse_config(raw), progress=False, log=lines.append)
    assert report.exit_code == 0 and report.dataset.per_split == {"train": report.dataset.kept}
    [warned] = [line for line in lines if line.startswith("warning: split ")]
    assert warned.startswith("warning: split val and test are empty: too few sources")  # 3 / 0 / 0


@pytest.mark.slow  # two whole runs through the CLI
def test_a_rerun_with_nothing_to_do_repeats_no_warning(tmp_path):
    import yaml
    from helpers.support import cli
    from helpers.demo import make_config

    raw = make_config(tmp_path, split={"train": 0.8, "val": 0.1, "test": 0.1}, sample={"every": 2.0})
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump(raw))
    first = cli("run", str(config), "-q", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert "warning: split val and test are empty" in first.stderr
    again = cli("run", str(config), "-q", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    said = again.stderr.splitlines()
    # the split line (and, offline, the detector's fallback line) is not said again
    [count] = [line for line in said if "of the previous run still hold" in line]
    assert not [line for line in said if "warning" in line.lower() and line != count], said
    assert "split val and test are empty" not in again.stderr
    shown = cli("run", str(config), "-q", "-v", cwd=tmp_path)
    assert "warning (as in the previous run): split val and test are empty" in shown.stderr
    assert "of the previous run still hold" not in shown.stderr  # shown, so not counted


@pytest.mark.slow  # two whole runs through the CLI
def test_a_split_whose_every_crop_was_rejected_is_said_to_be_empty(tmp_path):
    """Judged on dataset/: the split had its source, but a review took all of that source's
    crops out, so dataset/ has no such split (the line used to count the source and say nothing)."""
    import yaml
    from helpers.support import cli, read_manifest
    from helpers.demo import make_config

    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump(make_config(tmp_path)))  # 3 sources at 0.34/0.33/0.33: 1/1/1
    first = cli("run", str(config), "-q", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert "warning: split" not in first.stderr
    root = tmp_path / "out"
    val = [row["crop_id"] for row in read_manifest(root) if row["split"] == "val"]
    assert val and (root / "dataset" / "val").is_dir()
    (root / "rejects.txt").write_text("\n".join(val) + "\n")
    reviewed = cli("run", str(config), "-q", cwd=tmp_path)
    assert reviewed.returncode == 0, reviewed.stderr
    assert not list((root / "dataset").glob("val/**/*.jpg"))
    assert {row["status"] for row in read_manifest(root) if row["split"] == "val"} == {"rejected"}
    [warned] = [line for line in reviewed.stderr.splitlines() if line.startswith("warning: split")]
    assert warned == ("warning: split val is empty: every crop of the 1 val source was rejected "
                      "or dropped (the manifest's status column); add sources, or write split: "
                      "{train: 0.67, val: 0, test: 0.33}")
