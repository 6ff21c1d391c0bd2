"""Model files for the detector and model-cache tests: the unverified YuNet test weights (in the
shared test models folder), a file's sha256, a URL nobody answers, and what this OpenCV can run."""
from __future__ import annotations

import hashlib
import socket
from pathlib import Path

import cv2


ONNX = "yunet_test_unverified.onnx"
# OpenCV 4's DNN cannot import the person detector's graph (its loops need OpenCV 5+).
opencv_4 = int(cv2.__version__.split(".")[0]) < 5


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def closed_port_url(name: str) -> str:
    """A URL on a 127.0.0.1 port nobody listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/{name}"
