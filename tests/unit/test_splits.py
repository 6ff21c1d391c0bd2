"""Split assignment: by source, ratios as close as the number of sources allows, stable."""
from __future__ import annotations

import pytest

from pipeline.dataset import assign_splits, empty_splits, split_counts

RATIOS = {"train": 0.8, "val": 0.1, "test": 0.1}


def test_counts_follow_the_ratios():
    assert split_counts(10, RATIOS) == {"train": 8, "val": 1, "test": 1}
    assert split_counts(20, {"train": 0.7, "val": 0.15, "test": 0.15}) == {"train": 14, "val": 3, "test": 3}
    assert split_counts(2, RATIOS) == {"train": 2, "val": 0, "test": 0}
    assert split_counts(0, RATIOS) == {"train": 0, "val": 0, "test": 0}
    for n in range(1, 60):
        assert sum(split_counts(n, RATIOS).values()) == n


def test_assignment_is_deterministic_and_seeded():
    ids = [f"youtube-{i:03d}" for i in range(50)]
    a = assign_splits(ids, RATIOS, seed=0)
    assert a == assign_splits(list(reversed(ids)), RATIOS, seed=0)
    assert sorted(a.values()).count("train") == 40
    assert a != assign_splits(ids, RATIOS, seed=1)


def test_adding_or_removing_a_source_moves_few_others():
    ids = [f"file-v{i}-abcd" for i in range(40)]
    before = assign_splits(ids, RATIOS)
    after = assign_splits(ids + ["file-new-0000"], RATIOS)
    moved = [s for s in ids if before[s] != after[s]]
    assert len(moved) <= 2, moved
    fewer = assign_splits(ids[1:], RATIOS)
    assert sum(before[s] != fewer[s] for s in ids[1:]) <= 2


def test_splits_left_empty_are_named_with_why():
    line = empty_splits(5, RATIOS)  # 4 / 1 / 0: the test split gets no source
    assert line == ("split test is empty: too few sources with crops, each whole in one split "
                    "(test 0.1 x 5 = 0.5 of a source); add sources, or write split: "
                    "{train: 0.9, val: 0.1, test: 0}")
    assert empty_splits(2, RATIOS).startswith("split val and test are empty")
    assert empty_splits(10, RATIOS) is None and empty_splits(0, RATIOS) is None
    assert empty_splits(3, {"train": 1.0, "val": 0.0, "test": 0.0}) is None  # asked for none


@pytest.mark.slow  # a whole run
def test_a_run_says_which_split_is_empty_and_why(tmp_path):
    from helpers.demo import make_config

    from pipeline.config import parse_config
    from pipeline.run import run

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
