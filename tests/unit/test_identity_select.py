"""The identity global steps as pure functions: best crops per person, the cosine metric's
clustering, person sheet titles and the config that asks for them."""
from __future__ import annotations

import numpy as np
import pytest

from pipeline.config.identity import PerPerson
from pipeline.config.load import parse_config
from pipeline.io.yamlfile import ConfigError
from pipeline.algo.cluster import Group, cluster, track_groups
from pipeline.steps.identity import apply_per_person, select_per_person
from pipeline.review.sheets import person_title


def row(cid: str, person: str, source: str, t_s: float, quality: float, **extra) -> dict:
    return {"crop_id": cid, "identity_cluster": person, "identity": None, "source_id": source,
            "t_s": t_s, "quality": quality, "status": "kept", "dataset_file": f"dataset/x/{cid}",
            **extra}


def test_best_k_per_person_taken_in_rounds_over_the_sources():
    rows = [row("a1", "A", "s1", 0.0, 0.9), row("a2", "A", "s1", 1.0, 0.8), row("a3", "A", "s1", 2.0, 0.7),
            row("a4", "A", "s2", 0.0, 0.5), row("a5", "A", "s2", 1.0, 0.4),
            row("b1", "B", "s1", 0.0, 0.2)]
    # every source's best first (a1, a4), then the second round's better one (a2 over a5)
    assert select_per_person(rows, PerPerson(max=3)) == {"a1", "a4", "a2", "b1"}
    # min_gap_s within a source: a2 is 1 s from a1, so s1's second is a3
    assert select_per_person(rows, PerPerson(max=3, min_gap_s=1.5)) == {"a1", "a4", "a3", "b1"}


def test_per_person_drops_only_kept_embedded_crops_and_names_join_clusters():
    rows = [row("a1", "A", "s1", 0.0, 0.9, identity="Ann"), row("a2", "A2", "s2", 0.0, 0.95, identity="Ann"),
            row("a3", "A", "s1", 5.0, 0.1), row("r1", "A", "s1", 9.0, 0.99, status="rejected"),
            row("x1", None, "s1", 0.0, 0.5)]
    assert apply_per_person(rows, PerPerson(max=1)) == 1
    by_id = {r["crop_id"]: r for r in rows}
    # "Ann" is one person over two clusters: only her best (a2) stays; cluster A's unnamed a3 is
    # a person of its own; a rejected crop and a crop with no cluster take no part
    assert [by_id[c]["status"] for c in ("a1", "a2", "a3", "r1", "x1")] == \
        ["dropped", "kept", "kept", "rejected", "kept"]
    assert (by_id["a1"]["drop_reason"], by_id["a1"]["dataset_file"]) == ("per_person", None)


def test_cosine_clusters_use_the_same_edges_as_their_distance():
    pytest.importorskip("dlib", reason="clustering uses dlib's Chinese Whispers (identity extra)")

    def at(deg: float) -> np.ndarray:
        return np.array([np.cos(np.radians(deg)), np.sin(np.radians(deg))])

    # cosine distances: a-b 1 - cos(30) = 0.134, b-c 1 - cos(60) = 0.5
    groups = [Group("a", ("a",), at(0)), Group("b", ("b",), at(30)), Group("c", ("c",), at(90))]
    assert cluster(groups, 0.2, "cosine") == {"a": "a", "b": "a", "c": "c"}
    assert cluster(groups, 0.1, "cosine") == {"a": "a", "b": "b", "c": "c"}
    assert set(cluster(groups, 1.1, "cosine").values()) == {"a"}  # a-c: 1 - cos(90) = 1


def test_person_sheet_title_names_the_cluster():
    rows = [{"identity": "Aaron"}, {"identity": "Aaron"}, {"identity": "Ling"}, {"identity": None}]
    assert person_title("c_000_0", rows) == "Aaron · cluster c_000_0"
    assert person_title("c_000_0", [{"identity": None}]) == "cluster c_000_0"


def test_identity_config_per_model_defaults_and_person_sheets():
    base = {"sources": [{"path": "a.mp4"}]}
    assert parse_config({**base, "identity": {}}).identity.max_distance == 0.4
    sface = parse_config({**base, "identity": {"model": "sface"}}).identity
    assert (sface.model, sface.max_distance) == ("sface", 0.637)
    ident = parse_config({**base, "identity": {"per_person": {"max": 3, "min_gap_s": 2}},
                          "sheet": {"by": "person"}}).identity
    assert (ident.per_person.max, ident.per_person.min_gap_s) == (3, 2.0)
    with pytest.raises(ConfigError, match="sheet.by: person needs an identity section"):
        parse_config({**base, "sheet": {"by": "person"}})
    with pytest.raises(ConfigError, match="per_person"):
        parse_config({**base, "identity": {"per_person": {"max": 0}}})


def face_row(cid: str, track: int, frame: int, width: float = 40.0) -> dict:
    return {"crop_id": cid, "source_id": "s", "track_id": track, "frame_index": frame,
            "box_w": width}


def test_two_faces_in_one_frame_are_never_one_cluster():
    # a and b: one frame, the same face vector (twins, a mirror); c lies between them in time
    groups = [Group("a", ("a",), np.zeros(2), frames=frozenset({("s", 0)})),
              Group("b", ("b",), np.zeros(2), frames=frozenset({("s", 0)})),
              Group("c", ("c",), np.array([0.1, 0.0]), frames=frozenset({("s", 5)}))]
    clusters = cluster(groups, 0.4)
    assert clusters["a"] != clusters["b"]
    assert clusters["c"] in (clusters["a"], clusters["b"])  # c joins one of them, never both


def test_tracks_seen_together_are_never_linked():
    vectors = {"t0_f0": np.zeros(2), "t0_f1": np.zeros(2), "t1_f1": np.array([0.05, 0.0]),
               "t1_f2": np.array([0.05, 0.0])}
    rows = [face_row("t0_f0", 0, 0), face_row("t0_f1", 0, 1), face_row("t1_f1", 1, 1),
            face_row("t1_f2", 1, 2)]
    together = cluster(track_groups(rows, vectors), 0.4)
    assert len(set(together.values())) == 2  # both tracks in frame 1: two people
    rows[2]["frame_index"] = 3  # no shared frame: the same face, one person
    assert set(cluster(track_groups(rows, vectors), 0.4).values()) == {"t0_f0"}


def test_tracks_are_linked_by_the_average_of_their_crops_not_their_means():
    # one track's crops lie 0.3 either side of the other's: their means coincide (distance 0),
    # yet its every crop is 0.3 from the other track's; at 0.25 they are two people
    vectors = {"a1": np.array([-0.3, 0.0]), "a2": np.array([0.3, 0.0]), "b1": np.zeros(2)}
    rows = [face_row("a1", 0, 0), face_row("a2", 0, 1), face_row("b1", 1, 2)]
    assert len(set(cluster(track_groups(rows, vectors), 0.25).values())) == 2
    assert len(set(cluster(track_groups(rows, vectors), 0.35).values())) == 1


def test_a_cluster_is_named_by_its_smallest_crop_id_whatever_the_rounding():
    # the distance sums of a pair, added up in two orders, may differ in their last bits; the
    # name must still be the smallest crop id, or names would change between runs and sources
    rng = np.random.default_rng(0)
    for _ in range(20):
        crops = rng.normal(size=(2, 5, 8)).astype(np.float32) * 0.05 + rng.normal(size=8)
        groups = [Group(name, (name,), crops[k].mean(axis=0), crops[k])
                  for k, name in enumerate(("a", "b"))]
        assert cluster(groups, 0.4) == {"a": "a", "b": "a"}
