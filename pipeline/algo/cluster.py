"""Run-wide identity clusters: tracks joined by the distance of their face vectors.

Tracks first: the crops of one track are one person; groups of tracks are then merged by average
linkage below a distance, never across two tracks seen in the same frame.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Group:
    """The embedded crops of one track (or one untracked crop), named by its smallest crop id:
    their mean ``vector`` (what references are compared with), the ``vectors`` linking compares
    (None: the mean alone) and the ``frames`` (source, frame) it is seen in."""

    name: str
    crop_ids: tuple[str, ...]
    vector: np.ndarray
    vectors: np.ndarray | None = None
    frames: frozenset[tuple[str, int]] = frozenset()

    def linked(self) -> np.ndarray:
        """The vectors that stand for the group in linking, as rows."""
        return self.vector[None] if self.vectors is None else self.vectors


LINK_CROPS = 32


def unit(vector: np.ndarray) -> np.ndarray:
    return vector / max(float(np.linalg.norm(vector)), 1e-12)


def distance(a: np.ndarray, b: np.ndarray, metric: str) -> float:
    """Euclidean distance, or cosine distance ``1 - cos`` (``metric="cosine"``)."""
    if metric == "cosine":
        return 1.0 - float(np.dot(unit(a), unit(b)))
    return float(np.linalg.norm(a - b))


def distances(a: np.ndarray, b: np.ndarray, metric: str) -> np.ndarray:
    """``distance`` between every row of ``a`` and every row of ``b``, as a matrix."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if metric == "cosine":
        norm = lambda m: m / np.maximum(np.linalg.norm(m, axis=1, keepdims=True), 1e-12)  # noqa: E731
        return 1.0 - norm(a) @ norm(b).T
    squared = (a * a).sum(1)[:, None] + (b * b).sum(1)[None] - 2 * a @ b.T
    return np.sqrt(np.maximum(squared, 0.0))


def spread(ids: list[str], limit: int = LINK_CROPS) -> list[str]:
    """At most ``limit`` of a track's crop ids (in time order), evenly spaced, first and last
    included."""
    if len(ids) <= limit:
        return ids
    return [ids[int(i)] for i in np.round(np.linspace(0, len(ids) - 1, limit))]


def is_small(row: dict[str, Any], min_face: float) -> bool:
    """A face too small to tell who it is (``identity.min_face``, box width in pixels)."""
    return float(row["box_w"]) < min_face


def track_groups(rows: list[dict[str, Any]], vectors: dict[str, np.ndarray],
                 metric: str = "euclidean") -> list[Group]:
    """Embedded crops grouped by (source, track), each with its mean vector (back on the unit
    sphere for the cosine metric), its crops' vectors and frames, by name."""
    members: dict[tuple, list[dict[str, Any]]] = {}
    for row in rows:
        cid = row["crop_id"]
        if cid in vectors:
            track = row.get("track_id")
            key = (row["source_id"], track) if track is not None and track >= 0 else (cid,)
            members.setdefault(key, []).append(row)

    def group(items: list[dict[str, Any]]) -> Group:
        ids = sorted(r["crop_id"] for r in items)
        mean = np.mean([vectors[i] for i in ids], axis=0)
        return Group(ids[0], tuple(ids), unit(mean) if metric == "cosine" else mean,
                     np.stack([vectors[i] for i in spread(ids)]),
                     frozenset((r["source_id"], int(r["frame_index"])) for r in items))

    return sorted((group(items) for items in members.values()), key=lambda g: g.name)


def cannot_link(groups: list[Group]) -> np.ndarray:
    """Which groups are seen in one frame (a boolean matrix): two faces of one frame are two
    people, so those groups never join one cluster."""
    seen: dict[tuple[str, int], list[int]] = {}
    for i, g in enumerate(groups):
        for frame in g.frames:
            seen.setdefault(frame, []).append(i)
    apart = np.zeros((len(groups), len(groups)), bool)
    for together in seen.values():
        apart[np.ix_(together, together)] = True
    return apart


DISTANCE_BLOCK = 1024


def distance_sums(groups: list[Group], metric: str) -> tuple[np.ndarray, np.ndarray]:
    """(sums, counts): the sum of the distances between every crop of one group and every crop
    of another, and how many pairs, so that sums / counts is their average distance."""
    vecs = np.concatenate([g.linked() for g in groups]).astype(np.float64)
    sizes = np.array([len(g.linked()) for g in groups])
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    owner = np.repeat(np.arange(len(groups)), sizes)
    sums = np.zeros((len(groups), len(groups)))
    for first in range(0, len(vecs), DISTANCE_BLOCK):
        block = distances(vecs[first:first + DISTANCE_BLOCK], vecs, metric)
        np.add.at(sums, owner[first:first + DISTANCE_BLOCK], np.add.reduceat(block, starts, axis=1))
    return sums, np.outer(sizes, sizes).astype(np.float64)


def cluster(groups: list[Group], max_distance: float, metric: str = "euclidean") -> dict[str, str]:
    """{group name: cluster name}: average-linkage agglomerative clustering of the groups with
    cannot-link constraints, a cluster named by its smallest crop id.

    The two clusters whose crops lie closest on average join first, while that average is under
    ``max_distance`` and no group of one is seen in a frame with a group of the other. Averaging
    over the crops, not comparing means, lets no single track mean (pulled by a profile or a
    blurred frame) chain people together (docs/identity.md). Deterministic: ties go to the
    groups first in name order, and a cluster keeps the name of its first group (the smallest
    crop id), so adding sources leaves the names of unchanged clusters alone.
    """
    if not groups:
        return {}
    sums, counts = distance_sums(groups, metric)
    sums = (sums + sums.T) / 2  # a pair summed in two orders differs in the last bits: one number
    apart = cannot_link(groups)
    average = np.where(apart, np.inf, sums / counts)
    np.fill_diagonal(average, np.inf)
    root = list(range(len(groups)))
    while True:
        i, j = divmod(int(np.argmin(average)), len(groups))  # i < j: the matrix is symmetric
        if not average[i, j] < max_distance:
            break
        root[j] = i  # j joins i: its row and column leave the matrix, i's take both
        sums[i] += sums[j]
        counts[i] += counts[j]
        apart[i] |= apart[j]
        sums[:, i], counts[:, i], apart[:, i] = sums[i], counts[i], apart[i]
        gone = np.array(root) != np.arange(len(groups))
        average[i] = average[:, i] = np.where(apart[i] | gone, np.inf, sums[i] / counts[i])
        average[i, i] = np.inf
        average[j] = average[:, j] = np.inf

    def top(k: int) -> int:
        while root[k] != k:
            k = root[k]
        return k

    return {g.name: groups[top(k)].name for k, g in enumerate(groups)}
