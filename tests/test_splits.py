"""Split assignment: by source, ratios as close as the number of sources allows, stable."""
from __future__ import annotations

from pipeline.dataset import assign_splits, split_counts

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
