"""Contact sheets of the demo run, the sheet command, and rejects read back by a run (no browser
here)."""
from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image, ImageOps

from pipeline.runner.run import run
from pipeline.review.draw import layout_for
from pipeline.review.rows import (SheetError, read_manifest as read_jsonl_manifest, sheet_order)
from pipeline.review.sheets import build_sheets
from helpers.reviewkit import copy_run
from helpers.support import cli, read_manifest


def _blank(region: np.ndarray) -> bool:
    return bool(region.min() > 235)


def _tiles(sheet: np.ndarray, layout, n: int) -> list[dict]:
    """Per grid slot: the thumbnail and caption regions of the image."""
    out = []
    rows = -(-n // layout.columns)
    for i in range(rows * layout.columns):
        x, y = layout.tile_origin(i)
        if x + layout.tile_w > sheet.shape[1]:  # a one-row page is only as wide as its tiles
            continue
        cx = x + (layout.tile_w - layout.thumb) // 2
        out.append({"thumb": sheet[y:y + layout.thumb, cx:cx + layout.thumb].astype(int),
                    "caption": sheet[y + layout.thumb:y + layout.tile_h, x:x + layout.tile_w].astype(int)})
    return out


def _expected_thumb(root: Path, row: dict, size: int) -> np.ndarray:
    with Image.open(root / row["file"]) as im:
        thumb = ImageOps.contain(im.convert("RGB"), (size, size))
    canvas = Image.new("RGB", (size, size), (236, 236, 236))
    canvas.paste(thumb, ((size - thumb.width) // 2, (size - thumb.height) // 2))
    return np.asarray(canvas).astype(int)


def test_sheets_have_pages_tiles_in_order_and_captions(review_demo):
    root, cfg = review_demo.root, review_demo.config()
    rows = [r for r in read_jsonl_manifest(root) if r["status"] == "kept"]
    layout = layout_for(cfg.sheet.columns, cfg.sheet.thumb, cfg.sheet.max_per_label)
    assert layout.per_page == 6
    labels = sorted({r["label"] for r in rows})
    expected_files = set()
    for label in labels:
        mine = sheet_order(r for r in rows if r["label"] == label)
        pages = [mine[i:i + 6] for i in range(0, len(mine), 6)]
        for k, page in enumerate(pages, 1):
            name = f"{label}.jpg" if k == 1 else f"{label}-{k}.jpg"
            expected_files.add(name)
            sheet = np.asarray(Image.open(root / "sheets" / name).convert("RGB"))
            h, w, _ = sheet.shape
            grid_w, grid_h = layout.size(len(page))
            assert h == grid_h and grid_w <= w <= max(grid_w, 700), name
            header = sheet[layout.margin:layout.margin + layout.header_h - 12]
            assert header.min() < 60, f"{name}: no header text"
            tiles = _tiles(sheet, layout, len(page))
            assert len(tiles) >= len(page) > 0
            for i, tile in enumerate(tiles):
                if i >= len(page):  # the rest of the last row stays empty
                    assert _blank(tile["thumb"]) and _blank(tile["caption"]), f"{name}: tile {i} not blank"
                    continue
                assert not _blank(tile["thumb"]) and tile["caption"].min() < 100, f"{name}: tile {i}"
                diff = np.abs(tile["thumb"] - _expected_thumb(root, page[i], layout.thumb)).mean()
                assert diff < 12, f"{name}: tile {i} is not {page[i]['crop_id']} (diff {diff:.1f})"
            # the caption holds text: it differs from a blank caption, in anti-aliased greys
            caption = tiles[0]["caption"]
            assert len(np.unique(caption)) > 20 and (caption < 128).sum() > 40
    on_disk = {p.name for p in (root / "sheets").glob("*.jpg")}
    assert on_disk == expected_files
    assert any("-2.jpg" in n for n in on_disk), "the demo must page at max_per_label 6"
    assert (root / "sheets" / "index.html").is_file()


def test_split_sheets_and_a_rebuild_from_the_manifest_only(review_demo, tmp_path):
    demo = copy_run(review_demo, tmp_path / "out")
    for d in ("videos", "frames", "detections", "state", "dataset"):  # the manifest alone suffices
        shutil.rmtree(demo.root / d)
    report = build_sheets(demo.config(), demo.root, by="split", today="2000-01-02")
    rows = read_manifest(demo.root)
    splits = {r["split"] for r in rows}
    assert {p.name for p in (demo.root / "sheets" / "splits").glob("*.jpg")} >= {f"{s}.jpg" for s in splits}
    assert report.index == demo.root / "sheets" / "index.html"
    assert all(p.is_file() for p in report.images) and report.crops == len(rows)
    page = report.index.read_text()
    assert "2000-01-02" in page and '<script type="application/json" id="data">' in page
    assert not report.cached
    # the same inputs again: nothing is redrawn (a rerun of a big run stays quick) ...
    again = build_sheets(demo.config(), demo.root, by="split", today="2000-01-03")
    assert again.cached and again.images == report.images and "2000-01-02" in again.index.read_text()
    # ... unless a crop changed or a rebuild is asked for; a missing crop is drawn as a placeholder
    (demo.root / rows[0]["file"]).unlink()
    changed = build_sheets(demo.config(), demo.root, by="split", today="2000-01-03")
    assert not changed.cached and "2000-01-03" in changed.index.read_text()
    assert not build_sheets(demo.config(), demo.root, by="split", force=True).cached


def test_sheet_without_a_manifest_is_an_error(tmp_path, review_demo):
    with pytest.raises(SheetError, match="run the pipeline first"):
        build_sheets(review_demo.config(output=str(tmp_path / "none")), tmp_path / "none")


def test_rejects_leave_dataset_stay_in_manifest_and_recompute_nothing(review_demo, tmp_path):
    demo = copy_run(review_demo, tmp_path / "out")
    root = demo.root
    before = read_manifest(root)
    by_label = {}
    for r in before:
        by_label.setdefault(r["label"], []).append(r)
    picked = [by_label["astronaut"][1], by_label["astronaut"][4], by_label["hopper"][0]]
    ids = [r["crop_id"] for r in picked]
    (root / "rejects.txt").write_text(
        "# my review\n\n" + "\n".join(ids) + "\nnot-a-crop_000000000_0  # typo\n")
    messages: list[str] = []
    report = run(demo.config(), progress=False, log=messages.append)
    summary = json.loads((root / "summary.json").read_text())
    assert all(s == {"ran": 0, "skipped": 3, "failed": 0} for s in summary["stages"].values()), \
        summary["stages"]
    after = read_manifest(root)
    assert [r["crop_id"] for r in after] == [r["crop_id"] for r in before]
    assert {r["crop_id"] for r in after if r["status"] == "rejected"} == set(ids)
    assert all(r["status"] == "kept" for r in after if r["crop_id"] not in ids)
    for r in after:
        if r["crop_id"] in ids:
            assert r["dataset_file"] == "" and (root / r["file"]).is_file()  # the crop stays
    dataset = {p.stem for p in (root / "dataset").rglob("*.jpg")}
    assert dataset == {r["crop_id"] for r in before} - set(ids)
    meta_ids = set()
    for f in (root / "dataset").glob("*/metadata.csv"):
        with open(f, newline="") as fh:
            meta_ids |= {m["crop_id"] for m in csv.DictReader(fh)}
    assert meta_ids == dataset
    assert summary["crops"]["rejected"] == 3 and summary["crops"]["kept"] == len(before) - 3
    assert summary["crops"]["total"] == len(before)
    assert sum(summary["crops"]["per_label"].values()) == len(before) - 3
    assert summary["rejects"]["unknown"] == 1
    assert any("1 crop id(s)" in m and "not-a-crop_000000000_0" in m for m in messages), messages
    assert report.dataset.rejected == 3
    # the sheets leave rejected crops out and say so; the page still has them, marked
    astronaut = [r for r in after if r["label"] == "astronaut" and r["status"] == "kept"]
    layout = layout_for(4, 96, 6)
    first = np.asarray(Image.open(root / "sheets" / "astronaut.jpg").convert("RGB"))
    tile0 = _tiles(first, layout, 6)[0]["thumb"]
    assert np.abs(tile0 - _expected_thumb(root, sheet_order(astronaut)[0], 96)).mean() < 12
    index = (root / "sheets" / "index.html").read_text()
    page = json.loads(index.split('id="data">')[1].split("</script>")[0])
    assert {c["id"] for c in page["crops"] if c["status"] == "rejected"} == set(ids)
    # without the file, everything is back, still without recomputing
    (root / "rejects.txt").unlink()
    run(demo.config(), progress=False, log=messages.append)
    assert all(r["status"] == "kept" for r in read_manifest(root))
    assert {p.stem for p in (root / "dataset").rglob("*.jpg")} == {r["crop_id"] for r in before}


def test_cli_sheet_command_and_rejects_option(review_demo, tmp_path):
    demo = copy_run(review_demo, tmp_path / "out")
    config_file = tmp_path / "c.yaml"
    config_file.write_text(yaml.safe_dump(demo.raw))
    res = cli("sheet", str(config_file), "--by", "split", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert "review page: " in res.stdout and str(demo.root / "sheets" / "index.html") in res.stdout
    assert (demo.root / "sheets" / "splits").is_dir()
    people = cli("sheet", str(config_file), "--by", "person", cwd=tmp_path)  # a run without identity
    assert people.returncode == 2
    assert people.stderr.startswith("error: no identity clusters in the manifest: person sheets need")
    missing = cli("run", str(config_file), "-q", "--rejects", str(tmp_path / "nope.txt"), cwd=tmp_path)
    assert missing.returncode == 2 and "nope.txt" in missing.stderr
    rejects = tmp_path / "mine.txt"
    first = read_manifest(demo.root)[0]["crop_id"]
    rejects.write_text(first + "\n")
    res = cli("run", str(config_file), "-q", "--rejects", str(rejects), cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert "rejected: 1 (from " in res.stdout and "already done" in res.stdout
    assert f"sheets: {demo.root / 'sheets' / 'index.html'}" in res.stdout
    assert not (demo.root / "sheets" / "splits").exists()  # the config's sheet.by is label
    assert [r["status"] for r in read_manifest(demo.root) if r["crop_id"] == first] == ["rejected"]
    nothing = cli("sheet", str(tmp_path / "c2.yaml"), cwd=tmp_path)
    assert nothing.returncode == 2
    (tmp_path / "c2.yaml").write_text(yaml.safe_dump({**demo.raw, "output": str(tmp_path / "empty")}))
    nothing = cli("sheet", str(tmp_path / "c2.yaml"), cwd=tmp_path)
    assert nothing.returncode == 2 and "run the pipeline first" in nothing.stderr
