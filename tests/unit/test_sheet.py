"""Contact sheets, the review page's data, and rejects read back by a run (no browser here)."""
from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image, ImageDraw, ImageFont, ImageOps

from pipeline.dataset import apply_rejects, read_rejects
from pipeline.run import run
from pipeline.sheet import (MAX_PIXELS, MAX_SIDE, SheetError, build_sheets, format_time,
                            json_for_script, layout_for, page_names, read_manifest as read_jsonl_manifest,
                            render_index, sheet_order, short_ids, source_link)
from helpers.reviewkit import copy_run
from helpers.support import cli, read_manifest


# ----------------------------------------------------------------------------- pure parts

def test_the_bundled_font_is_truetype_and_antialiased():
    font = ImageFont.load_default(size=14)
    assert isinstance(font, ImageFont.FreeTypeFont), "Pillow without FreeType: sheets need >= 10.1"
    im = Image.new("L", (200, 24), 255)
    ImageDraw.Draw(im).text((2, 2), "hopper_pan 01:05 0.94", font=font, fill=0)
    levels = set(np.asarray(im).ravel().tolist())
    assert len(levels - {0, 255}) > 50, "text edges must have intermediate grey levels"


def test_format_time():
    assert format_time(0) == "00:00"
    assert format_time(65.9) == "01:05"
    assert format_time(64.9999999) == "01:05"  # t_s rounding noise does not go back a second
    assert format_time(3725) == "1:02:05"


def test_short_ids_are_short_and_unique():
    short = short_ids(["youtube-dQw4w9WgXcQ", "file-hopper_pan-200fdbc6", "vimeo-12345",
                       "file-clip-aaaa1111", "file-clip-bbbb2222"])
    assert short["youtube-dQw4w9WgXcQ"] == "dQw4w9WgXcQ"
    assert short["file-hopper_pan-200fdbc6"] == "hopper_pan"
    assert short["vimeo-12345"] == "12345"
    assert short["file-clip-aaaa1111"] == "clip~aaaa" and short["file-clip-bbbb2222"] == "clip~bbbb"


def test_source_links_open_the_video_at_the_crop():
    assert source_link("https://www.youtube.com/watch?v=dQw4w9WgXcQ&list=x", 65.7) == \
        "https://www.youtube.com/watch?v=dQw4w9WgXcQ&t=65s"
    assert source_link("https://youtu.be/dQw4w9WgXcQ", 3) == "https://www.youtube.com/watch?v=dQw4w9WgXcQ&t=3s"
    assert source_link("file:///data/v/a%20b.mp4", 1.5) == "file:///data/v/a%20b.mp4#t=1.5"
    assert source_link("https://example.org/v.mp4", 9) == "https://example.org/v.mp4"
    assert source_link("javascript:alert(1)", 1) is None
    assert source_link("", 1) is None and source_link(None, 1) is None


def test_page_names_never_collide():
    names = page_names({"hopper": 3, "hopper-2": 1, "a": 1})
    assert names[("hopper", 1)] == "hopper.jpg" and names[("hopper", 3)] == "hopper-3.jpg"
    assert names[("hopper-2", 1)] == "hopper-2.jpg" and names[("hopper", 2)] == "hopper~2.jpg"
    assert len(set(names.values())) == len(names)


def test_rejects_file_is_read_tolerantly(tmp_path):
    f = tmp_path / "rejects.txt"
    f.write_bytes("\ufeff# saved by the page\r\n\r\n  a_000000500_0  \r\nb_000001000_1 # blurry\n"
                  "crops/s/c_000002000_0.jpg\n\na_000000500_0\n   # only a comment\n".encode())
    assert read_rejects(f) == ["a_000000500_0", "b_000001000_1", "c_000002000_0"]
    rows = [{"crop_id": "a_000000500_0", "status": "kept", "dataset_file": "dataset/x"},
            {"crop_id": "z", "status": "kept", "dataset_file": "dataset/z"}]
    assert apply_rejects(rows, read_rejects(f)) == ["b_000001000_1", "c_000002000_0"]
    assert rows[0]["status"] == "rejected" and rows[0]["dataset_file"] is None
    assert rows[1]["status"] == "kept"


def test_json_in_script_cannot_close_or_confuse_the_block():
    hostile = {"title": "</script><script>alert(1)</script><!--<script>", "u": "a & b > c\u2028"}
    text = json_for_script(hostile)
    assert "<" not in text and ">" not in text and "&" not in text
    assert json.loads(text) == hostile


def test_layout_never_makes_an_image_too_big_to_open():
    for columns, thumb, per in [(50, 512, 100000), (1, 32, 100000), (10, 128, 300), (50, 32, 5)]:
        layout = layout_for(columns, thumb, per)
        w, h = layout.size(layout.per_page)
        assert w <= MAX_SIDE and h <= MAX_SIDE and w * h <= MAX_PIXELS, (columns, thumb, per)
        assert 1 <= layout.per_page <= per
    assert layout_for(10, 128, 300).per_page == 300  # the common case is not cut


# ----------------------------------------------------------------------------- sheet images

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


def test_page_data_escapes_outside_strings(tmp_path):
    rows = [{"crop_id": "s_000001000_0", "file": "crops/s/s_000001000_0.jpg", "label": "x",
             "split": "train", "source_id": "youtube-abcdefghijk", "t_s": 1.0, "score": 0.9,
             "title": "<script>alert(1)</script>", "uploader": "<b>me</b>",
             "source_url": "javascript:alert(2)", "status": "kept"}]
    page = render_index(rows, "r<&>", "2000-01-01")
    assert "<script>alert(1)" not in page and "<b>me</b>" not in page
    assert "<title>r&lt;&amp;&gt; · crops review</title>" in page
    data = page.split('id="data">', 1)[1].split("</script>", 1)[0]
    parsed = json.loads(data)
    assert parsed["sources"][0]["title"] == "<script>alert(1)</script>"
    assert parsed["crops"][0]["link"] is None  # a javascript: URL never becomes a link
    assert page.count("<script") == 2


# ----------------------------------------------------------------------------- rejects in a run

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
