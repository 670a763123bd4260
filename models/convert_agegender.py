"""Convert face-api.js's AgeGenderNet (tf.js uint8-quantised weights) to one ONNX file for cv2.dnn.

    python models/convert_agegender.py WEIGHTS.bin WEIGHTS-manifest.json OUT.onnx

Build time only (numpy and onnx, requirements-build.txt); `make models` runs it via
models/fetch.py on the files of the pinned `@vladmandic/face-api` npm tarball.

The graph is face-api.js's (src/xception/TinyXception.ts, src/ageGenderNet/AgeGenderNet.ts):
TinyXception with 2 main blocks on a 112x112 RGB input, a global 7x7 average pool, and
two fully connected heads, age (years) and gender (softmax, index 0 = male).
- Input: [N, 3, 112, 112] float RGB 0-255 (the face padded to a centred square and
  resized; N = 2: the pipeline sends a chip and its mirror in one forward); the graph
  subtracts the mean RGB and divides by 256 itself. face-api.js (the weights' trainer)
  divides by 256; @vladmandic/face-api 1.7.15 by 255 -- a 0.4 % input scale -- and we
  follow the trainer.
- Output: [N, 3] = (age in years, p(male), p(female)): one output so one cv2.dnn forward
  returns both heads.
- Weights: tf.js stores each quantised tensor as uint8 q with a per-tensor scale and min,
  value = q * scale + min (in double, then float32, as tf.js's decodeWeights does).
- TF 'same' padding puts the odd extra pixel at the bottom/right: explicit ONNX pads.

Deterministic: fixed names, opset, IR version and producer; no timestamps; so the same
inputs give the same bytes, whose sha256 models/manifest.json pins.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from onnx_graph import Graph, write

MEAN_RGB = (122.782, 117.001, 104.298)
DIVISOR = 256.0
SIZE = 112
MAIN_BLOCKS = 2
OPSET = 13
IR_VERSION = 7


def decode_weights(groups: list[dict], data: bytes) -> dict[str, np.ndarray]:
    """tf.js weights by name, as tf.io.decodeWeights gives them: float32 (uint8- or float16-quantised
    tensors dequantised), int32 as stored; in their TF layouts (HWIO, depthwise HWC1)."""
    out: dict[str, np.ndarray] = {}
    offset = 0
    for group in groups:
        for w in group["weights"]:
            shape = [int(s) for s in w["shape"]]
            count = int(np.prod(shape))
            quant = w.get("quantization")
            if quant and quant["dtype"] == "uint8":
                q = np.frombuffer(data, np.uint8, count, offset)
                offset += count
                values = (q.astype(np.float64) * quant["scale"] + quant["min"]).astype(np.float32)
            elif quant and quant["dtype"] == "float16":
                values = np.frombuffer(data, "<f2", count, offset).astype(np.float32)
                offset += 2 * count
            elif quant:
                raise ValueError(f"{w['name']}: unsupported quantisation {quant['dtype']}")
            elif w["dtype"] in ("float32", "int32"):
                values = np.frombuffer(data, "<f4" if w["dtype"] == "float32" else "<i4", count, offset)
                offset += 4 * count
            else:
                raise ValueError(f"{w['name']}: unsupported dtype {w['dtype']}")
            out[w["name"]] = values.reshape(shape)
    if offset != len(data):
        raise ValueError(f"{len(data)} bytes of weights, the manifest describes {offset}")
    return out


def load_weights(weights_bin: Path, weights_manifest: Path) -> dict[str, np.ndarray]:
    """The AgeGenderNet's weights from its .bin and weights manifest."""
    return decode_weights(json.loads(weights_manifest.read_text()), weights_bin.read_bytes())


def _same_pads(size: int, kernel: int, stride: int) -> list[int]:
    """ONNX pads [top, left, bottom, right] for TF 'same' on a square input."""
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return [total // 2, total // 2, total - total // 2, total - total // 2]


def _conv(g: Graph, x: str, w: dict, prefix: str, stride: int, size: int) -> str:
    filters = w[f"{prefix}/filters"]  # HWIO
    kernel = filters.shape[0]
    weight = g.const(f"{prefix}/W", filters.transpose(3, 2, 0, 1))
    bias = g.const(f"{prefix}/B", w[f"{prefix}/bias"])
    return g.op("Conv", [x, weight, bias], prefix, kernel_shape=[kernel, kernel], strides=[stride, stride],
                pads=_same_pads(size, kernel, stride))


def _separable(g: Graph, x: str, w: dict, prefix: str, size: int) -> str:
    """tf.separableConv2d (3x3 depthwise, stride 1, 'same') then the pointwise 1x1 with bias."""
    depthwise = w[f"{prefix}/depthwise_filter"]  # [3, 3, C, 1]
    channels = depthwise.shape[2]
    dw = g.op("Conv", [x, g.const(f"{prefix}/depthwise/W", depthwise.transpose(2, 3, 0, 1))], f"{prefix}/depthwise",
              kernel_shape=[3, 3], strides=[1, 1], pads=_same_pads(size, 3, 1), group=channels)
    pointwise = w[f"{prefix}/pointwise_filter"]  # [1, 1, C, O]
    return g.op("Conv", [dw, g.const(f"{prefix}/pointwise/W", pointwise.transpose(3, 2, 0, 1)),
                         g.const(f"{prefix}/B", w[f"{prefix}/bias"])], prefix, kernel_shape=[1, 1])


def _reduction(g: Graph, x: str, w: dict, prefix: str, size: int, activate_input: bool = True) -> str:
    out = g.op("Relu", [x], f"{prefix}/relu_in") if activate_input else x
    out = _separable(g, out, w, f"{prefix}/separable_conv0", size)
    out = _separable(g, g.op("Relu", [out], f"{prefix}/relu0"), w, f"{prefix}/separable_conv1", size)
    out = g.op("MaxPool", [out], f"{prefix}/maxpool", kernel_shape=[3, 3], strides=[2, 2],
               pads=_same_pads(size, 3, 2))
    return g.op("Add", [out, _conv(g, x, w, f"{prefix}/expansion_conv", 2, size)], f"{prefix}/add")


def _main_block(g: Graph, x: str, w: dict, prefix: str, size: int) -> str:
    out = x
    for i in range(3):
        out = _separable(g, g.op("Relu", [out], f"{prefix}/relu{i}"), w, f"{prefix}/separable_conv{i}", size)
    return g.op("Add", [out, x], f"{prefix}/add")


def build(weights: dict[str, np.ndarray], divisor: float = DIVISOR):
    """The ONNX model for the weights (see the module docstring for its input and output)."""
    from onnx import TensorProto, checker, helper

    g = Graph()
    x = g.op("Sub", ["input", g.const("mean_rgb", np.array(MEAN_RGB, np.float32).reshape(1, 3, 1, 1))], "centred")
    x = g.op("Mul", [x, g.const("inv_divisor", np.array(1.0 / divisor, np.float32))], "normalised")
    x = g.op("Relu", [_conv(g, x, weights, "entry_flow/conv_in", 2, SIZE)], "entry_flow/relu_in")
    x = _reduction(g, x, weights, "entry_flow/reduction_block_0", SIZE // 2, activate_input=False)
    x = _reduction(g, x, weights, "entry_flow/reduction_block_1", SIZE // 4)
    for i in range(MAIN_BLOCKS):
        x = _main_block(g, x, weights, f"middle_flow/main_block_{i}", SIZE // 8)
    x = _reduction(g, x, weights, "exit_flow/reduction_block", SIZE // 8)
    x = g.op("Relu", [_separable(g, x, weights, "exit_flow/separable_conv", SIZE // 16)], "exit_flow/relu")
    pooled = g.op("Flatten", [g.op("GlobalAveragePool", [x], "pool")], "features", axis=1)
    age = g.op("Gemm", [pooled, g.const("fc/age/W", weights["fc/age/weights"]),
                        g.const("fc/age/B", weights["fc/age/bias"])], "age")
    logits = g.op("Gemm", [pooled, g.const("fc/gender/W", weights["fc/gender/weights"]),
                           g.const("fc/gender/B", weights["fc/gender/bias"])], "gender_logits")
    gender = g.op("Softmax", [logits], "gender", axis=1)
    g.op("Concat", [age, gender], "age_gender", axis=1)
    graph = helper.make_graph(
        g.nodes, "face-api.js AgeGenderNet (TinyXception)",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3, SIZE, SIZE])],
        [helper.make_tensor_value_info("age_gender", TensorProto.FLOAT, ["N", 3])],
        g.inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="faceread models/convert_agegender.py", producer_version="1")
    model.ir_version = IR_VERSION
    model.doc_string = ("face-api.js AgeGenderNet weights (MIT; @vladmandic/face-api 1.7.15). "
                        "Input [N,3,112,112] RGB 0-255; output [N,3]: (age years, p(male), p(female)).")
    checker.check_model(model)
    return model


def convert(weights_bin: Path, weights_manifest: Path, out: Path) -> bytes:
    """Convert and write `out`; return the bytes written."""
    return write(build(load_weights(weights_bin, weights_manifest)), out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("weights_bin", type=Path)
    ap.add_argument("weights_manifest", type=Path)
    ap.add_argument("out", type=Path)
    args = ap.parse_args(argv)
    raw = convert(args.weights_bin, args.weights_manifest, args.out)
    print(f"convert_agegender: wrote {args.out} ({len(raw):,} bytes)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
