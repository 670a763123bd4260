"""A tiny ONNX graph builder for the converters (models/convert_*.py): nodes and initialisers with
predictable names, so the same weights always give the same bytes. Build time only (onnx)."""

from __future__ import annotations

from pathlib import Path

import numpy as np


class Graph:
    """Nodes and initialisers in the order they are added; every node has one output named as the node."""

    def __init__(self) -> None:
        from onnx import helper, numpy_helper

        self.helper, self.numpy_helper = helper, numpy_helper
        self.nodes: list = []
        self.inits: list = []

    def const(self, name: str, array: np.ndarray, dtype: type = np.float32) -> str:
        self.inits.append(self.numpy_helper.from_array(np.ascontiguousarray(array, dtype), name))
        return name

    def op(self, op_type: str, inputs: list[str], name: str, **attrs: object) -> str:
        self.nodes.append(self.helper.make_node(op_type, inputs, [name], name=name, **attrs))
        return name


def write(model, out: Path) -> bytes:
    """Serialise `model` deterministically (the manifest pins the bytes' sha256), write `out`, return the bytes."""
    raw = model.SerializeToString(deterministic=True)
    out.write_bytes(raw)
    return raw
