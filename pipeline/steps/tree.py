"""The ImageFolder tree ``dataset/<split>/<label>/``: hard links to the kept crops.
"""
from __future__ import annotations

import csv
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..core.records import METADATA_COLUMNS
from ..io.files import building, replace_dir, write_atomic
from .manifest import csv_text
from .splits import SPLITS


def link(src: Path, dst: Path) -> None:
    """Hard link (no extra space) or, across file systems, a copy."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def build_tree(root: Path, rows: list[dict[str, Any]]) -> None:
    """``dataset/<split>/<label>/<file>`` plus ``dataset/<split>/metadata.csv``, swapped in whole.

    The metadata sits in each split's folder because that is where Hugging Face's imagefolder
    looks for it when the data has split folders (a single root file is ignored there). It has a
    ``label`` column since, with metadata present, imagefolder no longer infers labels from the
    folder names.
    """
    final = root / "dataset"
    with building(final) as tmp:
        for row in rows:
            link(root / row["file"], tmp / Path(row["dataset_file"]).relative_to("dataset"))
        for split in SPLITS:
            meta = [{**row, "file_name": str(Path(row["dataset_file"]).relative_to(f"dataset/{split}"))}
                    for row in rows if row["split"] == split]
            if meta:
                write_atomic(tmp / split / "metadata.csv", csv_text(meta, METADATA_COLUMNS))
        replace_dir(tmp, final, ours_in_dataset(root))


def ours_in_dataset(root: Path) -> Callable[[str, Path], bool]:
    """Which files of the current ``dataset/`` this code wrote (paths relative to it): the
    ``dataset_file`` of every row of the manifest that describes it, each split's metadata.csv,
    and hard links of crops. Anything else is a user's and survives the swap to a new tree."""
    listed: set[str] = set()
    try:
        with open(root / "manifest.csv", newline="", encoding="utf-8") as f:
            listed = {r.get("dataset_file") or "" for r in csv.DictReader(f)}
    except (OSError, ValueError, csv.Error):
        pass

    def ours(rel: str, path: Path) -> bool:
        parts = rel.split("/")
        if f"dataset/{rel}" in listed or (len(parts) == 2 and parts[0] in SPLITS
                                           and parts[1] == "metadata.csv"):
            return True
        if len(parts) != 3 or parts[0] not in SPLITS:
            return False
        name = parts[2]  # <sid>_<t_ms>_<k>.<ext>: a link of crops/<sid>/<name>?
        try:
            return os.path.samefile(path, root / "crops" / name.rsplit("_", 2)[0] / name)
        except OSError:
            return False
    return ours
