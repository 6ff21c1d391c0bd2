"""The real detectors over whole labelled clips: recall of YuNet and of the person detector, and
its two backends giving the same boxes."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from pipeline.detectors.registry import create_detector
from helpers.boxes import detect_clip, frames, iou, matched
from helpers.models import opencv_4


@pytest.mark.testdata
@pytest.mark.slow  # every frame of a labelled clip
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


SSDLITE_BACKENDS = ["onnxruntime", pytest.param("opencv", marks=pytest.mark.skipif(
    opencv_4, reason=f"OpenCV {cv2.__version__} cannot import the graph's loops (needs 5+)"))]


@pytest.mark.testdata
@pytest.mark.slow  # 71 frames, three views each
@pytest.mark.parametrize("backend", SSDLITE_BACKENDS)
def test_ssdlite_recall_on_tud_campus(backend, empty_models, testdata):
    detector = create_detector("ssdlite-person", backend=backend)  # the shipped weights
    assert detector.backend == backend and not empty_models.exists()  # nothing downloaded or cached
    gt = np.loadtxt(testdata / "persons" / "tud_campus.gt.txt", delimiter=",", ndmin=2)
    clip = frames(testdata / "persons" / "tud_campus.mp4")
    assert len(clip) == 71
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
    print(f"ssdlite-person/{backend} on tud_campus, min_score 0.5: recall (people > 120 px, "
          f"IoU>=0.5) {recall:.3f}, false positives per frame {fp_rate:.2f}")
    # measured 0.805 and 0.07 at the default tiles (auto), as the TensorFlow graph itself gave
    # through OpenCV 5.0's TensorFlow importer on the same frames
    assert recall >= 0.75
    assert fp_rate < 0.2


@pytest.mark.testdata
@pytest.mark.slow  # both backends over the clip
@pytest.mark.skipif(opencv_4, reason=f"the opencv backend needs OpenCV 5+, not {cv2.__version__}")
def test_ssdlite_backends_give_the_same_boxes(testdata):
    clip = testdata / "persons" / "tud_campus.mp4"
    ort, _ = detect_clip(clip, "ssdlite-person", None, backend="onnxruntime", tiles="auto")
    ocv, _ = detect_clip(clip, "ssdlite-person", None, backend="opencv", tiles="auto")
    assert sum(len(d) for d in ort) > 200  # people in nearly every frame
    for a, b in zip(ort, ocv):
        assert len(a) == len(b)
        np.testing.assert_allclose(a.boxes, b.boxes, atol=0.5)  # pixels of the 640x480 frame
        np.testing.assert_allclose(a.scores, b.scores, atol=1e-3)
