# Generates the text graph (.pbtxt) OpenCV's dnn module needs to run an SSD frozen graph trained
# with the TensorFlow Object Detection API.
#
# Ported from OpenCV's samples/dnn/tf_text_graph_ssd.py and samples/dnn/tf_text_graph_common.py:
#   This file is a part of OpenCV project.
#   It is a subject to the license terms in the LICENSE file found in the top-level directory
#   of this distribution and at http://opencv.org/license.html.
#   Copyright (C) 2018, Intel Corporation, all rights reserved.
#   Third party copyrights are property of their respective owners.
# (OpenCV 4.5+ is Apache 2.0 licensed, earlier releases 3-clause BSD.)
# Changes from the original: typed and restructured into small functions; the SSD hyper-parameters
# come from an `SSDConfig` instead of a training pipeline.config; the whole TF preprocessor is
# removed (the caller normalises pixels itself, see ssdlite.py); the graph is checked against the
# config before writing; only the `ssd_anchor_generator` + convolutional box predictor variant is
# kept, because that is the only one our models use.
"""Turn an SSD ``frozen_inference_graph.pb`` into the ``.pbtxt`` that ``cv2.dnn`` can import.

Why: OpenCV cannot run the TF Object Detection API's anchor generator and post-processing (while
loops, TensorArrays). OpenCV's own answer is ``tf_text_graph_ssd.py``: dump the graph as text
(``cv2.dnn.writeTextGraph``), cut those parts away and put OpenCV's ``PriorBox`` and
``DetectionOutput`` layers in their place. That script is a sample, not part of the wheel, so the
needed logic lives here. Weights stay in the ``.pb``; the text only describes the topology.
"""
from __future__ import annotations

import hashlib
import os
import re
import tempfile
from dataclasses import dataclass, field
from math import sqrt
from pathlib import Path
from typing import Any, Iterable

import cv2

GENERATOR_VERSION = "1"
"""Bump when the generated text changes, so cached ``.pbtxt`` files are regenerated."""

# Ops the SSD feature extractor and box predictors need; everything else is TF plumbing.
_KEEP_OPS = frozenset({
    "Conv2D", "BiasAdd", "Add", "AddV2", "Relu", "Relu6", "Placeholder", "FusedBatchNorm",
    "DepthwiseConv2dNative", "ConcatV2", "Mul", "MaxPool", "AvgPool", "Identity", "Sub",
    "ResizeNearestNeighbor", "Pad", "FusedBatchNormV3", "Mean",
})
# The preprocessor is dropped entirely (not only its map loop as upstream does): resizing and
# scaling to [-1, 1] happen in ``cv2.dnn.blobFromImage``.
_REMOVE_PREFIXES = ("MultipleGridAnchorGenerator/", "Concatenate/", "Postprocessor/",
                    "Preprocessor/")
_UNUSED_ATTRS = ("T", "Tshape", "N", "Tidx", "Tdim", "use_cudnn_on_gpu", "Index", "Tperm",
                 "is_training", "Tpaddings")
OUTPUT_NODE = "detection_out"


@dataclass(frozen=True)
class SSDConfig:
    """The pipeline.config values of an SSD model with ``ssd_anchor_generator``.

    The defaults are the TF Object Detection API's SSD defaults; ``num_classes`` excludes the
    background class, as in pipeline.config.
    """

    num_classes: int
    image_width: int = 300
    image_height: int = 300
    num_layers: int = 6
    min_scale: float = 0.2
    max_scale: float = 0.95
    aspect_ratios: tuple[float, ...] = (1.0, 2.0, 0.5, 3.0, 0.3333)
    reduce_boxes_in_lowest_layer: bool = True
    box_coder_scales: tuple[float, float, float, float] = (10.0, 10.0, 5.0, 5.0)
    nms_threshold: float = 0.6
    score_threshold: float = 0.01
    max_detections_per_class: int = 100
    max_total_detections: int = 100

    def anchors(self, layer: int) -> tuple[list[float], list[float]]:
        """Anchor widths and heights in input pixels of one feature map (``SSDAnchorGenerator``)."""
        if layer == 0 and self.reduce_boxes_in_lowest_layer:
            widths = [0.1, self.min_scale * sqrt(2.0), self.min_scale * sqrt(0.5)]
            heights = [0.1, self.min_scale / sqrt(2.0), self.min_scale / sqrt(0.5)]
        else:
            scales = [self.min_scale + (self.max_scale - self.min_scale) * i / (self.num_layers - 1)
                      for i in range(self.num_layers)] + [1.0]
            widths = [scales[layer] * sqrt(ar) for ar in self.aspect_ratios]
            heights = [scales[layer] / sqrt(ar) for ar in self.aspect_ratios]
            widths.append(sqrt(scales[layer] * scales[layer + 1]))
            heights.append(sqrt(scales[layer] * scales[layer + 1]))
        side = min(self.image_width, self.image_height)
        return [w * side for w in widths], [h * side for h in heights]


# --- protobuf text format: just enough of it for GraphDef (port of tf_text_graph_common) -------

class Quoted(str):
    """A string token that was quoted in the text, so it is written back quoted."""


_TOKEN = re.compile(r"""
    \#[^\n]*                    # a comment: skipped
  | "((?:[^"\\]|\\.)*)"          # a double-quoted string
  | '((?:[^'\\]|\\.)*)'          # a single-quoted string
  | ([{}\[\]])                 # a brace or bracket
  | ([^\s:;,"'{}\[\]\#]+)       # a name or a bare value; whitespace : ; , separate
""", re.VERBOSE)

Message = dict[str, list[Any]]


def tokenize(text: str) -> list[str]:
    """Split protobuf text into names, values, braces; quoted strings become ``Quoted``."""
    tokens: list[str] = []
    for m in _TOKEN.finditer(text):
        double, single, brace, word = m.groups()
        if double is not None or single is not None:
            tokens.append(Quoted(double if double is not None else single))
        elif brace or word:
            tokens.append(brace or word)
    return tokens


def parse_message(tokens: list[str], idx: int = 0) -> tuple[Message, int]:
    """Parse ``{ ... }`` starting at ``tokens[idx]``; every field maps to a list of values."""
    assert tokens[idx] == "{"
    msg: Message = {}
    in_array = False
    name = ""
    while True:
        if not in_array:
            idx += 1
            name = tokens[idx]
            if name == "}" and not isinstance(name, Quoted):
                return msg, idx
        idx += 1
        value = tokens[idx]
        if value == "{" and not isinstance(value, Quoted):
            sub, idx = parse_message(tokens, idx)
            msg.setdefault(name, []).append(sub)
        elif value == "[" and not isinstance(value, Quoted):
            in_array = True
        elif value == "]" and not isinstance(value, Quoted):
            in_array = False
        else:
            msg.setdefault(name, []).append(value)


@dataclass
class Node:
    """One GraphDef node; ``attr`` maps a key to its AttrValue message."""

    name: str
    op: str
    inputs: list[str] = field(default_factory=list)
    attr: dict[str, Message] = field(default_factory=dict)


def attr_value(value: bool | int | float | str | list[int] | list[float]) -> Message:
    """An AttrValue message for a Python value (lists become 1-D tensors, as upstream)."""
    if isinstance(value, bool):
        return {"b": [value]}
    if isinstance(value, int):
        return {"i": [value]}
    if isinstance(value, float):
        return {"f": [value]}
    if isinstance(value, str):
        return {"s": [Quoted(value)]}
    if all(isinstance(v, int) for v in value):
        dtype, key = "DT_INT32", "int_val"
    elif all(isinstance(v, float) for v in value):
        dtype, key = "DT_FLOAT", "float_val"
    else:
        raise TypeError(f"tensor values must be all int or all float: {value!r}")
    return {"tensor": [{"dtype": [dtype], "tensor_shape": [{"dim": [{"size": [len(value)]}]}],
                        key: list(value)}]}


def parse_graph(text: str) -> list[Node]:
    msg, _ = parse_message(tokenize("{" + text + "}"))
    return [Node(name=n["name"][0], op=n["op"][0], inputs=list(n.get("input", [])),
                 attr={a["key"][0]: a["value"][0] for a in n.get("attr", [])})
            for n in msg.get("node", [])]


def _format_scalar(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, Quoted):
        return f'"{v}"'
    return str(v)


def _format_message(msg: Message, indent: int) -> Iterable[str]:
    pad = " " * indent
    for key in sorted(msg, key=str.lower):
        for v in msg[key]:
            if isinstance(v, dict):
                yield f"{pad}{key} {{"
                yield from _format_message(v, indent + 2)
                yield f"{pad}}}"
            else:
                yield f"{pad}{key}: {_format_scalar(v)}"


def format_graph(nodes: Iterable[Node]) -> str:
    lines: list[str] = []
    for node in nodes:
        lines += ["node {", f'  name: "{node.name}"', f'  op: "{node.op}"']
        lines += [f'  input: "{i}"' for i in node.inputs]
        for key in sorted(node.attr, key=str.lower):
            lines += ["  attr {", f'    key: "{key}"', "    value {"]
            lines += _format_message(node.attr[key], 6)
            lines += ["    }", "  }"]
        lines.append("}")
    return "\n".join(lines) + "\n"


# --- graph surgery (port of tf_text_graph_ssd.createSSDGraph) -----------------------------------

def _tensor_shape(node: Node) -> list[int]:
    shape = node.attr["value"]["tensor"][0]["tensor_shape"][0]
    return [int(d["size"][0]) for d in shape.get("dim", [])]


def check_graph(nodes: list[Node], config: SSDConfig) -> None:
    """Refuse a config that does not match the graph's box predictors.

    A wrong ``num_layers``, anchor count or ``num_classes`` would otherwise load fine and produce
    garbage boxes; the predictor convolutions' output channels tell the truth.
    """
    by_name = {n.name: n for n in nodes}
    for layer in range(config.num_layers):
        n_anchors = len(config.anchors(layer)[0])
        for head, per_anchor in (("ClassPredictor", config.num_classes + 1),
                                 ("BoxEncodingPredictor", 4)):
            weights = by_name.get(f"BoxPredictor_{layer}/{head}/weights")
            if weights is None:
                raise ValueError(f"graph has no BoxPredictor_{layer}/{head}: not an SSD graph "
                                 f"with {config.num_layers} feature maps")
            channels = _tensor_shape(weights)[-1]
            if channels != n_anchors * per_anchor:
                raise ValueError(f"BoxPredictor_{layer}/{head} has {channels} channels, config "
                                 f"expects {n_anchors} anchors x {per_anchor}")
    if f"BoxPredictor_{config.num_layers}/ClassPredictor/weights" in by_name:
        raise ValueError(f"graph has a BoxPredictor_{config.num_layers}: more than "
                         f"{config.num_layers} feature maps")


def remove_identities(nodes: list[Node]) -> list[Node]:
    """Drop Identity nodes, pointing their consumers at the Identity's input."""
    alias = {n.name: n.inputs[0] for n in nodes if n.op == "Identity"}

    def resolve(name: str) -> str:
        while name in alias:
            name = alias[name]
        return name

    kept = [n for n in nodes if n.op != "Identity"]
    for n in kept:
        n.inputs = [resolve(i) for i in n.inputs]
    return kept


def prune(nodes: list[Node]) -> list[Node]:
    """Keep the network layers only.

    Const nodes go too (OpenCV reads weights from the binary graph by name), but references to
    them stay; references to any other removed node are dropped.
    """
    def removed(n: Node) -> bool:
        return n.op == "Const" or n.op not in _KEEP_OPS or n.name.startswith(_REMOVE_PREFIXES)

    gone = {n.name for n in nodes if removed(n) and n.op != "Const"}
    kept = [n for n in nodes if not removed(n)]
    for n in kept:
        n.inputs = [i for i in n.inputs if i not in gone]
        for a in _UNUSED_ATTRS:
            n.attr.pop(a, None)
    return kept


def connect_input(nodes: list[Node], config: SSDConfig) -> Node:
    """Feed the Placeholder straight into the layers that read the preprocessor's output.

    Upstream rewires "node 1" and relies on node order; finding the consumers by name does not.
    """
    placeholder = next(n for n in nodes if n.op == "Placeholder")
    for n in nodes:
        if not n.name.startswith("Preprocessor/"):
            n.inputs = [placeholder.name if i.startswith("Preprocessor/") else i
                        for i in n.inputs]
    dims = placeholder.attr.get("shape", {}).get("shape", [{}])[0].get("dim", [])
    if len(dims) == 4:
        dims[1]["size"] = [config.image_height]
        dims[2]["size"] = [config.image_width]
    return placeholder


def ssd_head(placeholder: str, config: SSDConfig) -> list[Node]:
    """Flatten + concat the predictions, PriorBox per feature map, sigmoid, DetectionOutput."""
    nodes = [Node("concat/axis_flatten", "Const", attr={"value": attr_value([-1])})]
    for head in ("ClassPredictor", "BoxEncodingPredictor"):
        flats = [Node(f"BoxPredictor_{i}/{head}/BiasAdd/Flatten", "Flatten",
                      [f"BoxPredictor_{i}/{head}/BiasAdd"]) for i in range(config.num_layers)]
        nodes += flats
        nodes.append(Node(f"{head}/concat", "ConcatV2",
                          [f.name for f in flats] + ["concat/axis_flatten"]))
    variance = [1.0 / s for s in config.box_coder_scales]
    priors = []
    for i in range(config.num_layers):
        widths, heights = config.anchors(i)
        priors.append(Node(f"PriorBox_{i}", "PriorBox",
                           [f"BoxPredictor_{i}/BoxEncodingPredictor/BiasAdd", placeholder],
                           {"flip": attr_value(False), "clip": attr_value(False),
                            "width": attr_value(widths), "height": attr_value(heights),
                            "variance": attr_value(variance)}))
    nodes += priors
    nodes.append(Node("PriorBox/concat", "ConcatV2",
                      [p.name for p in priors] + ["concat/axis_flatten"]))
    nodes += [
        Node("ClassPredictor/concat3d/shape", "Const",
             attr={"value": attr_value([0, -1, config.num_classes + 1])}),
        Node("ClassPredictor/concat3d", "Reshape",
             ["ClassPredictor/concat", "ClassPredictor/concat3d/shape"]),
        Node("ClassPredictor/concat/sigmoid", "Sigmoid", ["ClassPredictor/concat3d"]),
        Node("ClassPredictor/concat/sigmoid/Flatten", "Flatten",
             ["ClassPredictor/concat/sigmoid"]),
        Node(OUTPUT_NODE, "DetectionOutput",
             ["BoxEncodingPredictor/concat", "ClassPredictor/concat/sigmoid/Flatten",
              "PriorBox/concat"],
             {"num_classes": attr_value(config.num_classes + 1),
              "share_location": attr_value(True),
              "background_label_id": attr_value(0),
              "nms_threshold": attr_value(float(config.nms_threshold)),
              "confidence_threshold": attr_value(float(config.score_threshold)),
              "top_k": attr_value(config.max_detections_per_class),
              "keep_top_k": attr_value(config.max_total_detections),
              "code_type": attr_value("CENTER_SIZE")}),
    ]
    return nodes


def drop_dangling(nodes: list[Node], output: str) -> list[Node]:
    """Repeatedly remove nodes nothing reads from (except the output), like upstream."""
    while True:
        used = {i for n in nodes for i in n.inputs}
        kept = [n for n in nodes if n.name in used or n.name == output]
        if len(kept) == len(nodes):
            return kept
        nodes = kept


def build_ssd_graph(raw_nodes: list[Node], config: SSDConfig) -> list[Node]:
    """The OpenCV-importable SSD graph from the nodes of ``cv2.dnn.writeTextGraph``'s output."""
    check_graph(raw_nodes, config)
    nodes = remove_identities(raw_nodes)
    placeholder = connect_input(nodes, config)
    nodes = prune(nodes)
    for n in nodes:
        if re.fullmatch(r"BoxPredictor_\d+/BoxEncodingPredictor/Conv2D", n.name):
            # TF emits box offsets as (y, x, h, w); DetectionOutput expects to be told.
            n.attr["loc_pred_transposed"] = attr_value(True)
    return drop_dangling(nodes + ssd_head(placeholder.name, config), OUTPUT_NODE)


def _cache_key(pb: Path, config: SSDConfig) -> str:
    stat = pb.stat()
    ident = f"{GENERATOR_VERSION}|{config!r}|{stat.st_size}|{stat.st_mtime_ns}|{cv2.__version__}"
    return hashlib.sha256(ident.encode()).hexdigest()[:16]


def write_text_graph(pb: Path, out: Path, config: SSDConfig) -> None:
    """Generate ``out`` from ``pb`` (atomically: a half-written graph is never left behind)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=out.name, suffix=".tmp", dir=out.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        cv2.dnn.writeTextGraph(str(pb), str(tmp))
        nodes = build_ssd_graph(parse_graph(tmp.read_text()), config)
        tmp.write_text(f"# {out.stem}: generated by pipeline from {pb.name}, "
                       f"key {_cache_key(pb, config)}\n" + format_graph(nodes))
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)


def _is_current(pbtxt: Path, key: str) -> bool:
    if not pbtxt.is_file():
        return False
    with open(pbtxt) as f:
        return key in f.readline()


def ensure_text_graph(pb: Path, config: SSDConfig) -> Path:
    """The ``.pbtxt`` for ``pb``: generated next to it once, reused while pb and config match.

    When the model folder is read-only (a shared, pre-seeded cache) it goes to the temp folder.
    """
    key = _cache_key(pb, config)
    beside = pb.with_suffix(".pbtxt")
    if _is_current(beside, key):
        return beside
    try:
        write_text_graph(pb, beside, config)
        return beside
    except OSError:
        fallback = Path(tempfile.gettempdir()) / "pipeline-text-graphs" / f"{pb.stem}-{key}.pbtxt"
        if not _is_current(fallback, key):
            write_text_graph(pb, fallback, config)
        return fallback
