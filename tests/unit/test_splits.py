"""Split assignment: by source, ratios as close as the number of sources allows, stable."""
from __future__ import annotations

from pipeline.steps.splits import assign_splits, empty_splits, split_counts


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


def rows_of(sources: dict[str, tuple[str, ...]]) -> list[dict]:
    """Manifest rows: {source id: (split, then the status of each of its crops)}."""
    return [{"source_id": sid, "split": split, "status": status}
            for sid, (split, *statuses) in sources.items() for status in statuses]


def sources_split(n: int) -> list[dict]:
    """n sources of two kept crops each, in the splits ``assign_splits`` gives them."""
    splits = assign_splits([f"s{i}" for i in range(n)], RATIOS)
    return rows_of({sid: (split, "kept", "kept") for sid, split in splits.items()})


def test_splits_left_empty_are_named_with_why():
    line = empty_splits(sources_split(5), RATIOS)  # 4 / 1 / 0: the test split gets no source
    assert line == ("split test is empty: too few sources with crops, each whole in one split "
                    "(test 0.1 x 5 = 0.5 of a source); add sources, or write split: "
                    "{train: 0.9, val: 0.1, test: 0}")
    assert empty_splits(sources_split(2), RATIOS).startswith("split val and test are empty")
    assert empty_splits(sources_split(10), RATIOS) is None and empty_splits([], RATIOS) is None
    assert empty_splits(sources_split(3), {"train": 1.0, "val": 0.0, "test": 0.0}) is None  # asked for none


def test_a_split_is_judged_on_the_crops_dataset_holds():
    """A split given a source whose crops were all rejected or dropped is empty in dataset/."""
    rows = rows_of({"a": ("train", "kept"), "b": ("val", "rejected", "dropped"),
                    "c": ("test", "kept", "rejected")})
    assert empty_splits(rows, RATIOS) == (
        "split val is empty: every crop of the 1 val source was rejected or dropped (the "
        "manifest's status column); add sources, or write split: {train: 0.9, val: 0, test: 0.1}")
    rows = rows_of({"a": ("train", "kept"), "b": ("val", "dropped"), "c": ("val", "rejected")})
    assert empty_splits(rows, RATIOS) == (
        "split val and test are empty: too few sources with crops, each whole in one split "
        "(test 0.1 x 3 = 0.3 of a source); every crop of the 2 val sources was rejected or "
        "dropped (the manifest's status column); add sources, or write split: "
        "{train: 1, val: 0, test: 0}")
    # one kept crop is enough; with none kept at all the run's counts say it, not a split line
    assert empty_splits(rows_of({"a": ("train", "kept"), "b": ("val", "rejected", "kept"),
                                 "c": ("test", "kept")}), RATIOS) is None
    assert empty_splits(rows_of({"a": ("train", "rejected"), "b": ("val", "dropped")}), RATIOS) is None
