"""``python -m pipeline export`` of the demo run: each format read back by its consumer (or checked
against its documented schema), every box compared with the manifest, kept crops only unless
``--all``."""
from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
import tarfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import cv2
import pytest
import yaml

from helpers.reviewkit import DemoRun, copy_run
from helpers.support import REPO, cli, read_manifest


@pytest.fixture
def demo(review_demo: DemoRun, tmp_path: Path) -> DemoRun:
    """A copy of the demo run with its config written as a YAML file (``demo.raw["file"]``)."""
    run = copy_run(review_demo, tmp_path / "out")
    (tmp_path / "run.yaml").write_text(yaml.safe_dump(run.raw))
    return run


def export(demo: DemoRun, fmt: str, *extra: str) -> Path:
    cwd = demo.root.parent
    result = cli("export", "run.yaml", "--format", fmt, *extra, cwd=cwd)
    assert result.returncode == 0, result.stderr
    folder = demo.root / "exports" / fmt
    assert str(folder.relative_to(cwd)) in result.stdout or str(folder) in result.stdout
    assert not list(folder.parent.glob(".*.tmp")), "no scratch folder may stay behind"
    return folder


def expected_boxes(root: Path, statuses: tuple[str, ...] = ("kept",)) -> dict[str, dict]:
    """crop id -> manifest row, for the rows an export should contain."""
    return {r["crop_id"]: r for r in read_manifest(root) if r["status"] in statuses}


def clipped(row: dict, width: int, height: int) -> tuple[float, float, float, float]:
    x, y = float(row["box_x"]), float(row["box_y"])
    x1, y1 = min(width, x + float(row["box_w"])), min(height, y + float(row["box_h"]))
    x, y = max(0.0, x), max(0.0, y)
    return x, y, x1 - x, y1 - y


def assert_close(got, row: dict, image: Path, tol: float = 1.0) -> None:
    """An exported x, y, w, h (pixels) within ``tol`` pixel of the manifest's box on that frame."""
    frame = cv2.imread(str(image))
    assert frame is not None, image
    want = clipped(row, frame.shape[1], frame.shape[0])
    assert all(abs(a - b) <= tol for a, b in zip(got, want)), (got, want, row["crop_id"])


def test_coco_loads_with_pycocotools_and_matches_the_manifest(demo):
    coco_mod = pytest.importorskip("pycocotools.coco", reason="pycocotools not installed")
    folder = export(demo, "coco")
    want = expected_boxes(demo.root)
    seen = set()
    splits = {r["source_id"]: r["split"] for r in want.values()}
    for ann_file in sorted(folder.glob("*/_annotations.coco.json")):
        split = ann_file.parent.name
        coco = coco_mod.COCO(str(ann_file))
        assert {c["name"] for c in coco.loadCats(coco.getCatIds())} == {"face", "person"}
        for ann in coco.loadAnns(coco.getAnnIds()):
            image = coco.loadImgs(ann["image_id"])[0]
            path = ann_file.parent / image["file_name"]
            assert cv2.imread(str(path)).shape[:2] == (image["height"], image["width"])
            attrs = ann["attributes"]
            row = want[attrs["crop_id"]]
            assert coco.loadCats(ann["category_id"])[0]["name"] == row["class"]
            assert attrs["track_id"] == int(row["track_id"]) and attrs["label"] == row["label"]
            assert splits[attrs["source_id"]] == split
            assert_close(ann["bbox"], row, path, tol=0.05)
            seen.add(attrs["crop_id"])
    assert seen == set(want), "every kept crop, and only those, is an annotation"


def test_yolo_labels_read_back_within_a_pixel(demo):
    folder = export(demo, "yolo")
    data = yaml.safe_load((folder / "data.yaml").read_text())
    want = expected_boxes(demo.root)
    assert data["names"] == {0: "face", 1: "person"} and data["nc"] == 2
    assert "path" not in data, "the folder of data.yaml is the dataset root, so it can move"
    by_frame: dict[tuple[str, int], list[dict]] = {}
    for row in want.values():
        by_frame.setdefault((row["source_id"], round(float(row["t_s"]) * 1000)), []).append(row)
    labels = 0
    for split in ("train", "val", "test"):
        assert data[split] == f"images/{split}"
        for image in sorted((folder / data[split]).iterdir()):
            label_file = folder / "labels" / split / f"{image.stem}.txt"
            sid, t_ms = image.stem.rsplit("_", 1)
            rows = sorted(by_frame[(sid, int(t_ms))], key=lambda r: float(r["box_x"]))
            assert {r["split"] for r in rows} == {split}
            h, w = cv2.imread(str(image)).shape[:2]
            lines = [list(map(float, line.split())) for line in label_file.read_text().splitlines()]
            lines.sort(key=lambda v: v[1] - v[3] / 2)
            assert len(lines) == len(rows)
            for (cls, cx, cy, bw, bh), row in zip(lines, rows):
                assert all(0 <= v <= 1 for v in (cx, cy, bw, bh))
                assert ["face", "person"][int(cls)] == row["class"]
                assert_close(((cx - bw / 2) * w, (cy - bh / 2) * h, bw * w, bh * h), row, image)
                labels += 1
    assert labels == len(want)


def test_labelstudio_tasks_follow_the_documented_format(demo):
    folder = export(demo, "labelstudio")
    config_text = (folder / "label_config.xml").read_text()
    config = ET.fromstring(config_text)
    image_tag = config.find("Image")
    rect = config.find("RectangleLabels")
    assert image_tag.get("value") == "$image" and rect.get("toName") == image_tag.get("name")
    names = {label.get("value") for label in rect.findall("Label")}
    tasks = json.loads((folder / "tasks.json").read_text())
    assert isinstance(tasks, list) and tasks
    want = expected_boxes(demo.root)
    seen = set()
    for task in tasks:
        url = task["data"]["image"]
        assert url.startswith("/data/local-files/?d=images/")
        image = folder / url.split("?d=", 1)[1]
        h, w = cv2.imread(str(image)).shape[:2]
        (prediction,) = task["predictions"]
        for result in prediction["result"]:
            assert result["type"] == "rectanglelabels"
            assert result["from_name"] == rect.get("name") and result["to_name"] == image_tag.get("name")
            assert (result["original_width"], result["original_height"]) == (w, h)
            v = result["value"]
            assert set(v["rectanglelabels"]) <= names
            assert all(0 <= v[k] <= 100 for k in ("x", "y", "width", "height"))
            assert v["x"] + v["width"] <= 100.001 and v["y"] + v["height"] <= 100.001
            row = want[result["id"]]
            assert v["rectanglelabels"] == [row["class"]]
            assert_close((v["x"] * w / 100, v["y"] * h / 100, v["width"] * w / 100,
                          v["height"] * h / 100), row, image)
            seen.add(result["id"])
        validate_with_label_studio(config_text, task)
    assert seen == set(want)


def validate_with_label_studio(config_text: str, task: dict) -> None:
    """Label Studio's own validator of predictions against a labelling config, when its SDK is
    installed (the files are checked against the documented format above either way)."""
    try:
        from label_studio_sdk.label_interface import LabelInterface
    except ImportError:
        return
    interface = LabelInterface(config_text)
    assert all(task["data"].get(obj.value_name) for obj in interface.objects)
    for prediction in task["predictions"]:
        assert interface.validate_prediction(prediction, return_errors=True) == []


def test_hf_dataset_saved_to_disk_loads_with_boxes_and_provenance(demo):
    datasets = pytest.importorskip("datasets", reason="Hugging Face datasets not installed")
    folder = export(demo, "hf")
    ds = datasets.load_from_disk(str(folder))
    want = expected_boxes(demo.root)
    assert len(ds) == len(want)
    for column in ("image", "label", "split", "box", "source_url", "t_s", "crop_id", "track_id"):
        assert column in ds.column_names
    names = ds.features["label"].names
    for item in ds:
        row = want[item["crop_id"]]
        assert names[item["label"]] == row["label"] and item["split"] == row["split"]
        assert item["source_url"] == row["source_url"] and item["t_s"] == float(row["t_s"])
        assert item["image"].size == (int(row["out_w"]), int(row["out_h"]))
        frame = demo.root / "frames" / row["source_id"] / f"{round(float(row['t_s']) * 1000):09d}.jpg"
        assert_close(item["box"], row, frame)


def test_fiftyone_folder_matches_the_documented_format(demo):
    folder = export(demo, "fiftyone")
    want = expected_boxes(demo.root)
    seen = set()
    for labels_file in sorted(folder.glob("*/labels.json")):
        labels = json.loads(labels_file.read_text())
        classes = labels["classes"]
        stems = {p.stem: p for p in (labels_file.parent / "data").iterdir()}
        assert set(labels["labels"]) == set(stems)
        for stem, detections in labels["labels"].items():
            h, w = cv2.imread(str(stems[stem])).shape[:2]
            for det in detections:
                x, y, bw, bh = det["bounding_box"]
                assert all(0 <= v <= 1 for v in (x, y, bw, bh))
                row = want[det["attributes"]["crop_id"]]
                assert classes[det["label"]] == row["class"] and det["confidence"] == float(row["score"])
                assert_close((x * w, y * h, bw * w, bh * h), row, stems[stem])
                seen.add(row["crop_id"])
        read_with_fiftyone(labels_file.parent, want)
    assert seen == set(want)


def read_with_fiftyone(folder: Path, want: dict[str, dict]) -> None:
    """FiftyOne's own importer for the format, when FiftyOne is installed (the importer parses
    the files; ``Dataset.from_dir`` wraps it and also needs a MongoDB server)."""
    try:
        from fiftyone.utils.data import FiftyOneImageDetectionDatasetImporter
    except ImportError:
        return
    with FiftyOneImageDetectionDatasetImporter(dataset_dir=str(folder)) as importer:
        samples = list(importer)
    assert samples
    for path, _, detections in samples:
        assert Path(path).parent == folder / "data"
        for det in detections.detections:
            row = want[det["crop_id"]]
            assert det.label == row["class"] and det["crop_label"] == row["label"]
            assert det.confidence == float(row["score"])


def test_all_adds_rejected_crops_and_a_rerun_replaces_the_folder(demo):
    rows = read_manifest(demo.root)
    rejected = [r["crop_id"] for r in rows if r["status"] == "kept"][:2]
    (demo.root / "rejects.txt").write_text("\n".join(rejected) + "\n")
    assert cli("run", "run.yaml", "-q", cwd=demo.root.parent).returncode == 0
    folder = export(demo, "coco")
    (folder / "stray.txt").write_text("left from an older export")

    def ids(f):
        return {a["attributes"]["crop_id"] for p in f.glob("*/_annotations.coco.json")
                for a in json.loads(p.read_text())["annotations"]}

    assert not set(rejected) & ids(folder)
    folder = export(demo, "coco", "--all")
    assert not (folder / "stray.txt").exists(), "a rerun replaces the export whole"
    everything = {r["crop_id"] for r in read_manifest(demo.root)}
    assert ids(folder) == everything and set(rejected) <= everything


def test_the_line_export_prints_counts_crops_or_boxes_on_frames_in_words(demo):
    kept = list(expected_boxes(demo.root).values())
    frames = {(r["source_id"], r["frame_index"]) for r in kept}
    assert len(kept) > 1 and len(frames) > 1
    cwd = demo.root.parent
    for fmt, counted in (("webdataset", f"{len(kept)} crops"),
                         ("coco", f"{len(kept)} boxes on {len(frames)} frames")):
        done = cli("export", "run.yaml", "--format", fmt, cwd=cwd)
        assert done.returncode == 0, done.stderr
        assert done.stdout.startswith(f"{fmt}: {counted} in "), done.stdout

    # one crop left in dataset/: the singular
    (demo.root / "rejects.txt").write_text("\n".join(r["crop_id"] for r in kept[1:]) + "\n")
    assert cli("run", "run.yaml", "-q", cwd=cwd).returncode == 0
    for fmt, counted in (("webdataset", "1 crop"), ("coco", "1 box on 1 frame")):
        done = cli("export", "run.yaml", "--format", fmt, cwd=cwd)
        assert done.returncode == 0, done.stderr
        assert done.stdout.startswith(f"{fmt}: {counted} in "), done.stdout


def test_export_never_replaces_a_folder_it_did_not_write(demo):
    mine = demo.root.parent / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    result = cli("export", "run.yaml", "--format", "yolo", "--out", "mine", cwd=demo.root.parent)
    assert result.returncode == 2 and "not empty" in result.stderr
    assert [p.name for p in mine.iterdir()] == ["notes.txt"]
    again = cli("export", "run.yaml", "--format", "yolo", "--out", "elsewhere/yolo", cwd=demo.root.parent)
    assert again.returncode == 0, again.stderr
    folder = demo.root.parent / "elsewhere" / "yolo"
    assert (folder / "data.yaml").is_file()
    assert cli("export", "run.yaml", "--format", "coco", "--out",
               "elsewhere/yolo", cwd=demo.root.parent).returncode == 0, "an earlier export is replaced"
    assert not (folder / "data.yaml").exists() and list(folder.glob("*/_annotations.coco.json"))


def read_webdataset(shards: list[Path]) -> list[dict]:
    """The samples of ``shards`` as webdataset gives them to a training loop: images decoded
    (PIL), ``.json`` parsed, ``.cls`` an int."""
    wds = pytest.importorskip("webdataset", reason="webdataset not installed")
    return list(wds.WebDataset([str(p) for p in shards], shardshuffle=False).decode("pil"))


def with_files(root: Path, statuses: tuple[str, ...]) -> dict[str, dict]:
    """crop id -> manifest row, for the crops of ``statuses`` that have a file."""
    return {k: r for k, r in expected_boxes(root, statuses).items() if r["file"]}


ALL = ("kept", "rejected", "dropped")


def check_crop(row: dict, image, meta: dict, label_index: int, classes: list[str], root: Path) -> None:
    """One exported crop against its manifest row: image, label (name and index), provenance, box."""
    assert image.size == (int(row["out_w"]), int(row["out_h"]))
    assert classes[label_index] == row["label"] == meta["label"]
    assert meta["split"] == row["split"] and meta["source_url"] == row["source_url"]
    assert meta["t_s"] == float(row["t_s"]) and meta["status"] == row["status"]
    frame = root / "frames" / row["source_id"] / f"{round(float(row['t_s']) * 1000):09d}.jpg"
    assert_close(meta["box"], row, frame)


def test_webdataset_shards_read_back_with_webdataset_in_fixed_bytes(demo):
    folder = export(demo, "webdataset", "--all", "--shard-count", "3")
    want = with_files(demo.root, ALL)
    index = json.loads((folder / "shards.json").read_text())
    classes = index["classes"]
    assert classes == sorted({r["label"] for r in expected_boxes(demo.root, ALL).values()})
    seen = set()
    for split, entry in index["splits"].items():
        shards = sorted(folder.glob(f"{split}-*.tar"))
        assert [p.name for p in shards] == entry["shards"] == [f"{split}-{i:06d}.tar"
                                                               for i in range(len(shards))]
        samples = read_webdataset(shards)
        assert len(samples) == entry["samples"] and len(shards) == -(-len(samples) // 3)
        for sample in samples:
            assert set(sample) >= {"jpg", "json", "cls"}
            row = want[sample["json"]["crop_id"]]
            assert sample["__key__"] == row["crop_id"] and row["split"] == split
            check_crop(row, sample["jpg"], sample["json"], sample["cls"], classes, demo.root)
            seen.add(row["crop_id"])
    assert seen == set(want), "every crop with a file is a sample, once"
    assert {r["split"] for r in want.values()} == set(index["splits"])

    again = cli("export", "run.yaml", "--format", "webdataset", "--all", "--shard-count", "3",
                "--out", "again", cwd=demo.root.parent)
    assert again.returncode == 0, again.stderr
    tars = sorted(folder.glob("*.tar"))
    assert len(tars) >= 2, "--shard-count 3 gives several shards"
    for shard in tars:
        assert shard.read_bytes() == (demo.root.parent / "again" / shard.name).read_bytes()
        with tarfile.open(shard) as tar:
            assert {(m.mtime, m.uid, m.gid, m.uname, m.gname) for m in tar} == {(0, 0, 0, "", "")}


def test_webdataset_default_is_the_kept_crops_and_shard_size_bounds_each_tar(demo):
    folder = export(demo, "webdataset")
    index = json.loads((folder / "shards.json").read_text())
    kept = {s: [r for r in expected_boxes(demo.root).values() if r["split"] == s]
            for s in ("train", "val", "test")}
    assert {s: e["samples"] for s, e in index["splits"].items()} == {
        s: len(rows) for s, rows in kept.items() if rows}
    assert all(len(e["shards"]) == 1 for e in index["splits"].values())

    # 25 kB: a few crops of 224 px (each 10-20 kB with its .json) a shard, often one
    limit = 25_000
    folder = export(demo, "webdataset", "--all", "--shard-size", "0.025")
    shards = sorted(folder.glob("*.tar"))
    assert len(shards) > len(index["splits"])
    for shard in shards:
        alone = len(read_webdataset([shard])) == 1
        assert shard.stat().st_size <= limit or alone, (shard.name, shard.stat().st_size)
    assert len(read_webdataset(shards)) == len(with_files(demo.root, ALL))


def test_webdataset_keys_of_crop_ids_with_dots_and_slashes(demo):
    """webdataset splits a member name at its first dot and groups members by what comes before
    it: a crop id with dots (or a slash, or "__" around it) must still give one whole sample."""
    hostile = ["clip.v1.2_000001000_0", "clip_v1_2_000001000_0", "__key__", "a/b.jpg", "é.x"]
    lines = (demo.root / "manifest.jsonl").read_text().splitlines()
    rows = [json.loads(line) for line in lines]
    kept = [r for r in rows if r["status"] == "kept"]
    assert len(kept) >= 2
    for row, crop_id in zip(kept, hostile):
        row["crop_id"] = crop_id
    (demo.root / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    renamed = {r["crop_id"] for r in kept[:len(hostile)]}
    folder = export(demo, "webdataset")
    shards = sorted(folder.glob("*.tar"))
    assert shards
    for shard in shards:
        with tarfile.open(shard) as tar:
            names = tar.getnames()
            assert names
            for name in names:
                assert "/" not in name and name.count(".") == 1 and not name.startswith("_"), name
    samples = read_webdataset(shards)
    assert len(samples) == len(kept) == len({s["__key__"] for s in samples})
    assert renamed <= {s["json"]["crop_id"] for s in samples}
    assert all(set(s) >= {"jpg", "json", "cls"} for s in samples)


def test_parquet_shards_load_with_datasets_and_pyarrow(demo, tmp_path, monkeypatch):
    pq = pytest.importorskip("pyarrow.parquet", reason="pyarrow not installed")
    datasets = pytest.importorskip("datasets", reason="Hugging Face datasets not installed")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    folder = export(demo, "parquet", "--all", "--shard-count", "4")
    want = expected_boxes(demo.root, ALL)
    files = sorted((folder / "data").iterdir())
    splits = sorted({r["split"] for r in want.values()})
    assert splits
    for split in splits:
        names = [p.name for p in files if p.name.startswith(f"{split}-")]
        rows = sum(1 for r in want.values() if r["split"] == split)
        n = -(-rows // 4)
        assert names == [f"{split}-{i:05d}-of-{n:05d}.parquet" for i in range(n)]
    table = pq.read_table(folder / "data")
    assert table.num_rows == len(want)
    assert str(table.schema.field("image").type) == "struct<bytes: binary, path: string>"
    assert all(pq.ParquetFile(p).metadata.row_group(0).num_rows <= 100 for p in files)

    cache = str(tmp_path / "hf-cache")
    ds = datasets.load_dataset("parquet", cache_dir=cache, data_files={
        s: str(folder / "data" / f"{s}-*.parquet") for s in splits})
    assert sorted(ds) == splits
    classes = ds["train"].features["label"].names
    seen = set()
    for split in splits:
        for item in ds[split]:
            row = want[item["crop_id"]]
            assert row["split"] == split
            if row["file"]:
                check_crop(row, item["image"], {**item, "label": row["label"]}, item["label"],
                           classes, demo.root)
            else:
                assert item["image"] is None and classes[item["label"]] == row["label"]
            seen.add(item["crop_id"])
    assert seen == set(want)
    hub = datasets.load_dataset(str(folder), cache_dir=cache)
    assert {s: len(hub[s]) for s in hub} == {s: len(ds[s]) for s in splits}, "the Hub's layout"


def test_shard_limits_are_checked_before_anything_is_written(demo):
    cwd = demo.root.parent
    for args, words in [
            (("--format", "webdataset", "--shard-size", "0"), "--shard-size must be"),
            (("--format", "parquet", "--shard-size", "-5"), "--shard-size must be"),
            (("--format", "webdataset", "--shard-size", "nan"), "--shard-size must be"),
            (("--format", "webdataset", "--shard-size", "inf"), "--shard-size must be"),
            (("--format", "webdataset", "--shard-count", "0"), "--shard-count must be"),
            (("--format", "parquet", "--shard-count", "-1"), "--shard-count must be"),
            (("--format", "webdataset", "--shard-count", "1.5"), "'1.5' is not a valid integer"),
            (("--format", "webdataset", "--shard-size", "10MB"), "'10MB' is not a valid float"),
            (("--format", "coco", "--shard-count", "10"), "are for the webdataset and parquet")]:
        result = cli("export", "run.yaml", *args, cwd=cwd)
        assert result.returncode == 2 and words in result.stderr, (args, result.stderr)
        assert not (demo.root / "exports").exists(), args


def test_a_crop_file_gone_is_one_line_and_the_earlier_export_stays(demo):
    folder = export(demo, "parquet")
    before = {p.name: p.read_bytes() for p in (folder / "data").iterdir()}
    row = next(iter(expected_boxes(demo.root).values()))
    (demo.root / row["file"]).unlink()
    for fmt in ("webdataset", "parquet", "hf"):
        result = cli("export", "run.yaml", "--format", fmt, cwd=demo.root.parent)
        assert result.returncode == 2, result.stderr
        assert result.stderr.count("\n") == 1 and row["crop_id"] in result.stderr
        assert "run the pipeline again" in result.stderr
    assert {p.name: p.read_bytes() for p in (folder / "data").iterdir()} == before
    assert not (demo.root / "exports" / "webdataset").exists()
    assert not list((demo.root / "exports").glob(".*.tmp"))


@pytest.mark.parametrize("fmt, package", [("parquet", "pyarrow"), ("hf", "datasets")])
def test_a_format_whose_package_is_missing_says_how_to_install_it(demo, tmp_path, fmt, package):
    blocked = tmp_path / "blocked" / package
    blocked.mkdir(parents=True)
    (blocked / "__init__.py").write_text(f'raise ImportError("No module named {package}")\n')
    result = cli("export", "run.yaml", "--format", fmt, cwd=demo.root.parent,
                 env={"PYTHONPATH": os.pathsep.join([str(blocked.parent), str(REPO)])})
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert f"needs the {package} package" in result.stderr and f'pip install -e ".[{fmt}]"' in result.stderr
    assert not (demo.root / "exports").exists()


def blocked_on_a_lock(pid: int) -> bool:
    """Whether process ``pid`` waits for a lock (``/proc/locks`` lists waiters after ``->``)."""
    return any(line.split()[1] == "->" and line.split()[5] == str(pid)
               for line in Path("/proc/locks").read_text().splitlines() if "->" in line)


@pytest.mark.skipif(not Path("/proc/locks").is_file(), reason="needs Linux's /proc/locks")
def test_exports_of_two_runs_into_one_folder_take_turns(demo, tmp_path):
    """Each export holds its own run's lock; into one --out they must still not write at once:
    while another process holds the folder, an export waits, then replaces the folder whole."""
    out = tmp_path / "shared" / "coco"
    out.parent.mkdir()
    holder = os.open(out.parent, os.O_RDONLY)
    fcntl.flock(holder, fcntl.LOCK_EX)
    waiting = subprocess.Popen([sys.executable, "-m", "pipeline", "export", "run.yaml", "--format",
                                "coco", "--out", str(out)], cwd=demo.root.parent,
                               env={**os.environ, "PYTHONPATH": str(REPO)},
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while waiting.poll() is None and not blocked_on_a_lock(waiting.pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert waiting.poll() is None and not out.exists(), "the export must wait for the folder"
    finally:
        os.close(holder)
    _, err = waiting.communicate(timeout=120)
    assert waiting.returncode == 0, err
    assert list(out.glob("*/_annotations.coco.json"))
