"""Near-duplicate crops: a perceptual hash per crop, and the global step that drops the copies.

Why our own hash rather than ``imagehash``: a 64-bit pHash is a DCT of a 32x32 grayscale copy
and a median, about 15 lines with the OpenCV and numpy we already use, whereas ``imagehash``
would bring PyWavelets and scipy into every install. It is checked by its known properties
(tests/test_dedupe.py): identical crops give distance 0, a JPEG re-encode or a brightness change
a few bits, different people around half of the 64 bits.

Why a global step (``dataset.build_dataset``) for both scopes rather than in the crop stage:
one implementation, and changing ``dedupe`` never redoes a stage (it is not in any fingerprint),
so trying another ``max_distance`` is instant. The crop stage only stores each crop's hash.
Determinism: crops are visited best quality first (ties by crop id), whatever order the sources
finished in, and a crop is a duplicate of the nearest crop kept before it within
``max_distance`` bits of the same class (and, with ``scope: source``, the same source).
Duplicates keep their file under ``crops/`` (like review rejects) but leave ``dataset/`` and the
sheets; the manifest says ``drop_reason: duplicate`` and ``duplicate_of: <crop id>``.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Literal

import cv2
import numpy as np

__all__ = ["dedupe", "hamming", "phash", "phash_hex"]

_POPCOUNT8 = np.array([bin(i).count("1") for i in range(256)], dtype=np.uint8)


def phash(image: np.ndarray) -> int:
    """64-bit perceptual hash: the 8x8 lowest frequencies of the DCT of a 32x32 grayscale copy,
    each bit telling whether that coefficient is above their median (the DC term excluded from
    the median, as in the usual pHash, so overall brightness does not matter)."""
    gray = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    small = cv2.resize(gray, (32, 32), interpolation=cv2.INTER_AREA).astype(np.float32)
    low = cv2.dct(small)[:8, :8].ravel()
    bits = low > np.median(low[1:])
    return int(np.packbits(bits.astype(np.uint8)).view(">u8")[0])


def phash_hex(image: np.ndarray) -> str:
    return f"{phash(image):016x}"


def hamming(a: int | np.ndarray, b: int | np.ndarray) -> np.ndarray:
    """Bits that differ between 64-bit hashes (either side may be an array of them)."""
    x = np.atleast_1d(np.bitwise_xor(np.asarray(a, dtype=np.uint64), np.asarray(b, dtype=np.uint64)))
    if hasattr(np, "bitwise_count"):  # numpy >= 2.0: a popcount instruction
        return np.bitwise_count(x).astype(np.int64)
    return _POPCOUNT8[x.view(np.uint8)].reshape(*x.shape, 8).sum(axis=-1).astype(np.int64)


def dedupe(rows: Sequence[dict[str, Any]], max_distance: int,
           scope: Literal["source", "all"] = "source") -> dict[str, str]:
    """{crop id: crop id it duplicates} for the rows (keys ``crop_id``, ``phash`` hex, ``class``,
    ``source_id``, ``quality``) that are within ``max_distance`` bits of a better crop.

    Rows without a hash are never duplicates. Visiting order: quality high to low, then crop id,
    so the best crop of a group of copies is the one kept.
    """
    order = sorted((r for r in rows if r.get("phash")),
                   key=lambda r: (-(r.get("quality") or 0.0), r["crop_id"]))
    kept: dict[tuple, _Kept] = {}
    duplicate_of: dict[str, str] = {}
    for r in order:
        group = (r.get("class"),) if scope == "all" else (r.get("class"), r["source_id"])
        reps = kept.setdefault(group, _Kept())
        h = int(r["phash"], 16)
        if reps.n:
            dist = hamming(reps.hashes[:reps.n], h)
            nearest = int(np.argmin(dist))  # the first of equals: the better crop
            if dist[nearest] <= max_distance:
                duplicate_of[r["crop_id"]] = reps.ids[nearest]
                continue
        reps.add(r["crop_id"], h)
    return duplicate_of


class _Kept:
    """The crops kept so far in one group: ids and a growing array of their hashes (each new
    crop is compared with all of them at once: N x kept popcounts, vectorised, ~10^8 a second,
    so tens of thousands of crops take seconds; per_track selection usually comes first)."""

    def __init__(self) -> None:
        self.ids: list[str] = []
        self.hashes = np.zeros(64, dtype=np.uint64)
        self.n = 0

    def add(self, crop_id: str, h: int) -> None:
        if self.n == len(self.hashes):
            self.hashes = np.concatenate([self.hashes, np.zeros_like(self.hashes)])
        self.hashes[self.n] = h
        self.ids.append(crop_id)
        self.n += 1


def groups(duplicate_of: dict[str, str]) -> Iterable[tuple[str, list[str]]]:
    """(kept crop, its duplicates) pairs, for reports."""
    out: dict[str, list[str]] = {}
    for dup, rep in sorted(duplicate_of.items()):
        out.setdefault(rep, []).append(dup)
    return sorted(out.items())
