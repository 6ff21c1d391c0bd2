"""An onnxruntime session on the CPU that keeps to the unit's thread budget (both ONNX detectors).

onnxruntime is a dependency: it runs the person detector's graph on any OpenCV version, and
YuNet's network in 9 CPU-ms a 640x360 view where OpenCV 5.1's DNN takes 14 (docs/detectors.md).
"""
from __future__ import annotations

from importlib import import_module
from pathlib import Path

import cv2
import numpy as np

from .modelfiles import ModelError


class OrtSession:
    """An onnxruntime session with as many threads as OpenCV may use: the detect stage limits
    those when parallel workers share the cores (``exec.cpus``), and the session follows."""

    def __init__(self, onnx: Path) -> None:
        self._ort = import_module("onnxruntime")
        self._onnx = onnx
        self._threads = -1
        self._session = self._open()
        self.runtime = f"onnxruntime-{self._ort.__version__}"

    def _open(self):
        self._threads = cv2.getNumThreads()
        options = self._ort.SessionOptions()
        options.intra_op_num_threads = max(1, self._threads)
        options.log_severity_level = 3  # the converted person graph's harmless shape warnings
        # Idle threads sleep instead of spinning: on a busy machine (the frame prefetch thread,
        # other processes) spinning threads fight for the cores; 2 threads took 89 ms a view
        # spinning and 22 ms not under load, 11.0 and 12.1 ms on a quiet machine (person
        # detector); YuNet at 640x360 spent 12.7 CPU-ms spinning, 8.9 not.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            return self._ort.InferenceSession(str(self._onnx), options,
                                              providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own exception types
            raise ModelError(f"onnxruntime cannot load {self._onnx}: {exc}") from exc

    def input_name(self) -> str:
        return self._session.get_inputs()[0].name

    def output_names(self) -> list[str]:
        return [o.name for o in self._session.get_outputs()]

    def run(self, outputs: list[str], feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        if cv2.getNumThreads() != self._threads:
            self._session = self._open()
        return self._session.run(outputs, feeds)
