"""Who is in the crop: run-wide identity clusters and reference names (a global step).

Runs after all sources, from the vectors the identity stage stored (``identity/<sid>.npz``), so
changing ``identity.max_distance``, ``references`` or ``keep`` recomputes no embedding.

Faces narrower than ``identity.min_face`` pixels get no cluster (``identity_skip: small``): too
small to tell who it is, they made clusters of strangers on interview footage (docs/identity.md).

Tracks first: the crops of one track (``pipeline.algo.track``) are one person. On the test clips one
profile or blurred frame alone can lie 0.76 from the same face, while tracks keep people apart and
one person together through a camera cut; it also merges the fragments of one person within a
source.

Clusters: average-linkage agglomerative clustering over the tracks of the whole run: two clusters
join while the average distance between their crops is under ``max_distance``, and never when
one holds a track seen in the same frame as a track of the other (two faces of one frame are two
people). Determinism: tracks are given in the order of their smallest crop id, ties go to the
first, and a cluster is named by its smallest crop id, so its name does not depend on which
other clusters exist: rerunning, or adding a source that brings new people, leaves the existing
names alone.

References: each photo's largest face (found by the configured detector) is embedded; a track
whose mean is within ``max_distance`` of a reference vector takes the nearest reference's name as
``identity`` and as its crops' label (overriding the source's), so ``dataset/`` sorts them under
that name. ``keep: references`` drops every other crop (``drop_reason: identity``).

Names from a review: ``<output>/identities.txt`` (saved by the review page, or written by hand)
holds ``<cluster> <name>`` lines; every crop of a named cluster takes the name as ``identity``
and label, over a reference's; a ``<source id>:<track id> <name>`` line names one track, over its
cluster's name (splitting a wrong cluster). Like ``rejects.txt`` it is read by the global step,
and checked before any stage runs (``preflight``); lines naming no cluster or track of the run
are reported (``unknown_names`` in the summary), not silently ignored.

Distances are the embedder's own (``Embedder.metric``): euclidean for dlib, cosine for sface.

Best crops per person (``identity.per_person: {max: K, min_gap_s: S}``): after ``dedupe``, each
person (a name, else a cluster) keeps K crops of the whole run, by the crop's ``quality``; the
others are dropped (``drop_reason: per_person``). Taken in rounds over the sources (every
source's best, then every source's second best, ...), each at least S seconds from the crops
already taken in its source, so a person seen in five videos keeps shots from all five.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ..algo.cluster import cluster, distance, is_small, track_groups
from ..config.fields import Named
from ..config.identity import PerPerson
from ..config.schema import Config
from ..embedders import Face, embedder_class
from ..algo.quality import DROPPED, KEPT, select_per_track
from ..stages import identity as stage
from .names import NAMES_FILE, IdentityError, named_lines, read_names
from ..stages.detect import detector_for


def track_key(row: dict[str, Any]) -> str | None:
    """``<source id>:<track id>``: how a names file names one track, to split it off a wrong
    cluster (None for an untracked crop)."""
    track = row.get("track_id")
    return f"{row['source_id']}:{track}" if track is not None and track >= 0 else None


def relabel(row: dict[str, Any], name: str) -> None:
    """Give a crop a person's name as identity and label; its dataset file follows."""
    row["identity"] = row["label"] = name
    if row.get("dataset_file"):
        row["dataset_file"] = f"dataset/{row['split']}/{name}/{Path(row['file']).name}"


@dataclass(frozen=True)
class Reference:
    name: str
    photo: str
    vector: np.ndarray


def reference_vectors(config: Config) -> list[Reference]:
    """One vector per reference photo: its largest face, by the run's own detector and embedder.

    Paths are relative to the working folder, like ``sources[].path``. Raises ``IdentityError``
    naming the photo when it cannot be read or shows no face.
    """
    assert config.identity is not None
    refs = []
    for name, photos in sorted(config.identity.references.items()):
        for photo in photos:
            path = Path(photo).expanduser()
            if not path.is_file():  # said before OpenCV's own warning line about it
                raise IdentityError(f"identity.references.{name}: no such file: {photo} "
                                    "(paths are relative to the working folder)")
            image = cv2.imread(str(path))
            if image is None:
                raise IdentityError(f"identity.references.{name}: cannot read the image {photo} "
                                    "(paths are relative to the working folder)")
            d = config.detect
            dets = detector_for(config).detect(image).filtered(d.min_score, d.min_size)
            if len(dets) == 0:
                raise IdentityError(f"identity.references.{name}: no face found in {photo} "
                                    f"at detect.min_score {d.min_score:g}; use a photo where "
                                    "the face is clearly visible")
            box = tuple(float(v) for v in dets.boxes[int(np.argmax(dets.area))])
            vector = stage.embedder_for(config).embed(image, [Face(box)])[0]
            refs.append(Reference(name, photo, vector))
    return refs


"""At most this many crops a track take part in linking, spread evenly over it: the distances
cost (crops of the run)^2, and a long track's neighbouring crops repeat each other."""


"""Crops whose distances to all others are computed at once (a block x crops matrix in memory)."""


def nearest_reference(vector: np.ndarray, refs: list[Reference],
                      metric: str = "euclidean") -> tuple[str, float]:
    distances = [distance(vector, r.vector, metric) for r in refs]
    best = int(np.argmin(distances))
    return refs[best].name, distances[best]


def apply_identity(config: Config, root: Path, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Fill the identity columns of the manifest rows, relabel and drop as configured; returns
    the summary's ``identity`` section (crops per cluster and per reference name)."""
    ident = config.identity
    assert ident is not None
    metric = embedder_class(ident.model).metric
    refs = reference_vectors(config)
    names = read_names(root / NAMES_FILE) if (root / NAMES_FILE).is_file() else {}
    vectors: dict[str, np.ndarray] = {}
    for sid in sorted({r["source_id"] for r in rows}):
        path = stage.output_path(root, sid)
        if path.is_file():
            vectors.update(stage.load_vectors(path))
    by_id = {r["crop_id"]: r for r in rows}
    small = {cid for cid in vectors if cid in by_id and is_small(by_id[cid], ident.min_face)}
    groups = track_groups(rows, {k: v for k, v in vectors.items() if k not in small}, metric)
    clusters = cluster(groups, ident.max_distance, metric)
    group_of = {cid: g for g in groups for cid in g.crop_ids}
    for row in rows:
        row.update(identity_cluster=None, identity=None, identity_distance=None,
                   identity_skip="small" if row["crop_id"] in small else None)
        group = group_of.get(row["crop_id"])
        if group is not None:
            row["identity_cluster"] = clusters[group.name]
        if group is not None and refs:
            name, apart = nearest_reference(group.vector, refs, metric)
            row["identity_distance"] = round(apart, 4)
            if apart <= ident.max_distance:
                relabel(row, name)
        for key in (row["identity_cluster"], track_key(row)):  # a track's name over its cluster's
            if key in names:
                relabel(row, names[key])
        if ident.keep == "references" and row["status"] == KEPT and row["identity"] is None:
            row.update(status=DROPPED, drop_reason="identity", dataset_file=None)
    known = set(clusters.values()) | {track_key(r) for r in rows}
    unknown = sorted(k for k in names if k not in known)
    return {"model": ident.model, "max_distance": ident.max_distance, "min_face": ident.min_face,
            "embedded": len(group_of) + len(small), "clusters": len(set(clusters.values())),
            "skipped": {"small": len(small)} if small else {},
            "named": {k: n for k, n in sorted(names.items()) if k in known},
            "unknown_names": unknown,
            # a named cluster that is one no more: its crops joined another cluster (a larger
            # max_distance), whose name, if any, they now carry
            "merged_names": {k: clusters[group_of[k].name] for k in unknown if k in group_of},
            "per_cluster": kept_per_cluster(rows),
            "per_identity": dict(sorted(Counter(r["identity"] for r in rows if r["identity"]).items()))}


def kept_per_cluster(rows: list[dict[str, Any]]) -> dict[str, int]:
    """Kept crops per cluster, most first: what ``dataset/`` holds of each person once rejects,
    ``keep``, ``dedupe`` and ``per_person`` have dropped theirs."""
    counts = Counter(r["identity_cluster"] for r in rows if r["status"] == KEPT and r["identity_cluster"])
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def preflight(root: Path, config: Config) -> None:
    """What the global step will need, checked before any stage: ``<output>/identities.txt``, so
    a bad line stops the run at once (``IdentityError`` naming file and line), as a bad
    ``rejects.txt`` does; its names become labels, so they must not clash with the config's."""
    if (root / NAMES_FILE).is_file():
        named_lines(root / NAMES_FILE, [Named(n.prefix, f"{n.ref} in the config", n.label)
                                         for n in config.labels()])


def person_of(row: dict[str, Any]) -> str | None:
    """Who a crop shows for per-person selection: its name, else its cluster (None: not
    embedded)."""
    return row.get("identity") or row.get("identity_cluster")


def select_per_person(rows: list[dict[str, Any]], rule: PerPerson) -> set[str]:
    """The crop ids each person keeps: ``rule.max`` by ``quality``, in rounds over the sources.

    Within a source the crops are ranked as ``crop.per_track`` ranks a track's (best first, at
    least ``min_gap_s`` apart); a person then takes every source's first, then every source's
    second ..., better crops first within a round, until ``max``. Ties go to the crop id.
    """
    groups: dict[tuple[str, str], int] = {}  # (person, source) -> a "track" of select_per_track
    items = [{"track_id": groups.setdefault((person_of(r), r["source_id"]), len(groups)),
              "t_ms": round(float(r["t_s"]) * 1000), "crop_id": r["crop_id"]} for r in rows]
    quality = [float(r.get("quality") or 0.0) for r in rows]
    eligible = select_per_track(items, quality, len(items), rule.min_gap_s)
    ranked: dict[int, list[int]] = {}
    for i in sorted(eligible, key=lambda i: (-quality[i], items[i]["crop_id"])):
        ranked.setdefault(items[i]["track_id"], []).append(i)
    person = {g: key[0] for key, g in groups.items()}
    order: dict[str, list[tuple[int, float, str]]] = {}
    for g, members in ranked.items():
        order.setdefault(person[g], []).extend(
            (rank, -quality[i], items[i]["crop_id"]) for rank, i in enumerate(members))
    return {cid for picks in order.values() for *_, cid in sorted(picks)[:rule.max]}


def apply_per_person(rows: list[dict[str, Any]], rule: PerPerson) -> int:
    """Drop (``per_person``) the kept, embedded crops that are not among their person's best;
    returns how many. Rejected and already dropped crops take no part."""
    candidates = [r for r in rows if r["status"] == KEPT and person_of(r)]
    keep = select_per_person(candidates, rule)
    dropped = 0
    for row in candidates:
        if row["crop_id"] not in keep:
            row.update(status=DROPPED, drop_reason="per_person", dataset_file=None)
            dropped += 1
    return dropped
