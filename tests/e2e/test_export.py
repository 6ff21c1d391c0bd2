"""``python -m pipeline export`` of the demo run: each format read back by its consumer (or checked
against its documented schema), every box compared with the manifest, kept crops only unless
``--all``."""
from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import cv2
import pytest
import yaml

from helpers.reviewkit import DemoRun, copy_run
from helpers.support import cli, read_manifest


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
