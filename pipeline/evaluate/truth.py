"""Ground truth as people have it: MOTChallenge ``gt.txt``, COCO annotations of frames, a plain
CSV, and YouTube Faces ``*.labeled_faces.txt``, each read into boxes keyed by the source they
label and the 0-based frame of the video (the manifest's ``frame_index``).

Which source a file labels: its name stem, as it lies beside the video (``X.gt.txt``,
``X.labeled_faces.txt``, ``X.json`` or ``X.coco.json`` for ``X.mp4``; a MOTChallenge
``<sequence>/gt/gt.txt`` labels ``<sequence>``), or, for the CSV, its ``source`` column (a
source id or a file name).
"""
from __future__ import annotations

import csv
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

Box = tuple[float, float, float, float]
"""x (left), y (top), width, height, in the video's pixels."""


class TruthError(ValueError):
    """A truth file that cannot be read; the message names the file and what is wrong."""


@dataclass(frozen=True)
class TruthBox:
    """One labelled object in one frame. ``identity`` is the labelled person or track (None when
    the format has none); ``ignore`` marks a region that is neither to be found nor a false box
    (MOT17's conf-0 rows and distractor classes, COCO's crowds)."""

    frame: int
    box: Box
    identity: str | None = None
    ignore: bool = False


@dataclass(frozen=True)
class Truth:
    """The boxes a file gives one source; ``key`` names that source (a file stem, a source id).
    ``people``: its identities name people across sources (YouTube Faces' person, the CSV's
    identity column); otherwise they are track numbers of this source only (MOT, COCO)."""

    file: Path
    key: str
    boxes: tuple[TruthBox, ...]
    people: bool = False

    @property
    def has_identities(self) -> bool:
        return any(b.identity is not None for b in self.boxes if not b.ignore)


MOT_DISTRACTORS = frozenset({2, 7, 8, 12})
"""MOT16/17 classes scored as neither hit nor miss: person on vehicle, static person, distractor,
reflection. Class 1 (pedestrian) and -1 (MOT15, no class) are to be found; the other classes
(cars, bicycles, ...) are not people and are left out."""
MOT_PEOPLE = frozenset({-1, 1})


def _stem(path: Path, suffixes: tuple[str, ...]) -> str:
    name = path.name
    for suffix in suffixes:
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return path.stem


def _number(value: str, file: Path, line: int) -> float:
    try:
        return float(value)
    except ValueError:
        raise TruthError(f"{file}: line {line}: {value!r} is not a number") from None


def read_mot(path: Path) -> list[Truth]:
    """MOTChallenge: ``frame (1-based), id, x, y, w, h, conf, class, visibility``; MOT15 files
    stop at conf or fill the rest with -1."""
    key = path.parent.parent.name if path.name == "gt.txt" and path.parent.name == "gt" else (
        _stem(path, (".gt.txt", ".txt")))
    boxes = []
    for n, row in enumerate(csv.reader(path.read_text(encoding="utf-8").splitlines()), 1):
        if not row or not "".join(row).strip():
            continue
        if len(row) < 6:
            raise TruthError(f"{path}: line {n}: a MOTChallenge row has at least 6 columns "
                             "(frame, id, x, y, w, h)")
        v = [_number(c, path, n) for c in row[:9]]
        conf = v[6] if len(v) > 6 else 1.0
        kind = int(v[7]) if len(v) > 7 else -1
        if kind not in MOT_PEOPLE | MOT_DISTRACTORS:
            continue
        boxes.append(TruthBox(int(v[0]) - 1, (v[2], v[3], v[4], v[5]), str(int(v[1])),
                              ignore=conf == 0 or kind in MOT_DISTRACTORS))
    return [Truth(path, key, tuple(boxes))]


def read_ytf(path: Path) -> list[Truth]:
    """YouTube Faces: row i is frame i; ``file, _, cx, cy, w, h, ...`` (box centre and size).
    The person is the first folder of ``file`` (``Aaron_Guiel\\5\\5.1841.jpg``)."""
    boxes = []
    rows = [r for r in csv.reader(path.read_text(encoding="utf-8").splitlines()) if r]
    for i, row in enumerate(rows):
        if len(row) < 6:
            raise TruthError(f"{path}: line {i + 1}: a labeled_faces row has at least 6 columns")
        cx, cy, w, h = (_number(c, path, i + 1) for c in row[2:6])
        person = re.split(r"[\\/]", row[0])[0] or None
        boxes.append(TruthBox(i, (cx - w / 2, cy - h / 2, w, h), person))
    return [Truth(path, _stem(path, (".labeled_faces.txt",)), tuple(boxes), people=True)]


CSV_COLUMNS = ("source", "frame", "x", "y", "w", "h")


def read_csv(path: Path) -> list[Truth]:
    """``source,frame,x,y,w,h[,identity]``, frame 0-based, with or without that header line;
    one file may label several sources."""
    rows = [r for r in csv.reader(path.read_text(encoding="utf-8").splitlines()) if r]
    if rows and [c.strip().lower() for c in rows[0][:6]] == list(CSV_COLUMNS):
        rows, first = rows[1:], 2
    else:
        first = 1
    by_source: dict[str, list[TruthBox]] = {}
    for n, row in enumerate(rows, first):
        if len(row) < 6:
            raise TruthError(f"{path}: line {n}: expected source,frame,x,y,w,h[,identity]")
        frame = _number(row[1], path, n)
        x, y, w, h = (_number(c, path, n) for c in row[2:6])
        identity = row[6].strip() or None if len(row) > 6 else None
        by_source.setdefault(row[0].strip(), []).append(TruthBox(int(frame), (x, y, w, h), identity))
    return [Truth(path, key, tuple(boxes), people=True) for key, boxes in by_source.items()]


_TRACK_KEYS = ("track_id", "instance_id", "identity", "person")


def _coco_frame(image: dict[str, Any], path: Path) -> int:
    """The image's frame: a ``frame_index``, ``frame_id`` or ``frame`` field, else the last
    number in its file name (``frame_000012.png``, as CVAT and Label Studio name frames)."""
    for k in ("frame_index", "frame_id", "frame"):
        if isinstance(image.get(k), int):
            return image[k]
    numbers = re.findall(r"\d+", Path(str(image.get("file_name", ""))).stem)
    if not numbers:
        raise TruthError(f"{path}: image {image.get('id')} has no frame number (a frame_index field "
                         "or a number in its file_name)")
    return int(numbers[-1])


def _coco_identity(ann: dict[str, Any]) -> str | None:
    """The object's track: a top-level field or one of CVAT's ``attributes``."""
    for where in (ann, ann.get("attributes") or {}):
        for k in _TRACK_KEYS:
            if where.get(k) not in (None, ""):
                return str(where[k])
    return None


def _coco_box(bbox: list[Any]) -> Box:
    """``bbox``'s x, y, width and height (COCO's order, ours too); a shorter or non-numeric one
    raises ValueError or TypeError."""
    x, y, w, h = (float(v) for v in bbox[:4])
    return x, y, w, h


def read_coco(path: Path) -> list[Truth]:
    """COCO annotations of a video's frames (``images`` with a frame number, ``annotations``
    with ``bbox`` and optionally a track id); crowd boxes are ignore regions."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        frames = {img["id"]: _coco_frame(img, path) for img in doc["images"]}
        boxes = tuple(TruthBox(frames[a["image_id"]], _coco_box(a["bbox"]), _coco_identity(a),
                               ignore=bool(a.get("iscrowd", 0)))
                      for a in doc["annotations"])
    except TruthError:
        raise
    except (ValueError, KeyError, TypeError, IndexError) as exc:  # ValueError: JSON, or a bbox
        raise TruthError(f"{path}: not COCO annotations ({type(exc).__name__}: {exc})") from None
    return [Truth(path, _stem(path, (".coco.json", ".json")), boxes)]


def read_truth(path: Path) -> list[Truth]:
    """Every source a truth file labels, its format told by its name (``.labeled_faces.txt``,
    ``.json``, ``.csv``, else MOTChallenge text)."""
    name = path.name.lower()
    reader = (read_ytf if name.endswith(".labeled_faces.txt") else read_coco if name.endswith(".json")
              else read_csv if name.endswith(".csv") else read_mot)
    try:
        return reader(path)
    except (OSError, UnicodeDecodeError) as exc:
        raise TruthError(f"cannot read {path}: {exc}") from None
