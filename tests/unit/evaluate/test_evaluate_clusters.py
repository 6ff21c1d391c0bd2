"""BCubed and pairwise scores of a clustering, checked on cases counted by hand."""
from __future__ import annotations

import pytest

from pipeline.evaluate.clusters import bcubed, pairwise


def test_a_perfect_clustering_scores_one() -> None:
    assert bcubed(["a", "a", "b"], ["x", "x", "y"]).f == 1.0
    assert pairwise(["a", "a", "b"], ["x", "x", "y"]).f == 1.0


def test_two_people_in_one_cluster_cost_precision_not_recall() -> None:
    # One cluster of 3 items: 2 of x, 1 of y. BCubed precision: x items 2/3 each, y 1/3 ->
    # (2/3 + 2/3 + 1/3) / 3 = 5/9; recall 1 for every item.
    scores = bcubed(["c", "c", "c"], ["x", "x", "y"])
    assert scores.precision == pytest.approx(5 / 9)
    assert scores.recall == 1.0
    # Pairs together: 3, of which 1 (the two x) is one person.
    pairs = pairwise(["c", "c", "c"], ["x", "x", "y"])
    assert (pairs.precision, pairs.recall) == (pytest.approx(1 / 3), 1.0)


def test_one_person_split_in_two_costs_recall() -> None:
    # x's 4 items in clusters of 3 and 1: recall (3 * 3/4 + 1/4) / 4 = 10/16.
    scores = bcubed(["a", "a", "a", "b"], ["x"] * 4)
    assert (scores.precision, scores.recall) == (1.0, pytest.approx(10 / 16))
    assert scores.f == pytest.approx(2 * 10 / 16 / (1 + 10 / 16))
    # Pairs of x: 6; together 3.
    assert pairwise(["a", "a", "a", "b"], ["x"] * 4).recall == pytest.approx(3 / 6)


def test_unclustered_items_are_clusters_of_their_own() -> None:
    # Two faces of x left without a cluster are not one cluster: precision stays 1, recall falls.
    scores = bcubed([None, None, "a"], ["x", "x", "y"])
    assert scores.precision == 1.0
    assert scores.recall == pytest.approx((1 / 2 + 1 / 2 + 1) / 3)
    assert pairwise([None, None], ["x", "x"]).recall == 0.0


def test_lengths_must_match() -> None:
    with pytest.raises(ValueError, match="2 predicted labels for 1 true ones"):
        bcubed(["a", "b"], ["x"])
