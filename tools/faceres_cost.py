#!/usr/bin/env python3
"""What a FaceRes voice would add to the attribute step, per face, paired in one process (issue 27).

    .venv/bin/python tools/faceres_cost.py --nets DIR [--rounds 7]

DIR holds the manifest's candidates (models/fetch.py --section candidates) and, optionally,
`faceres-deep-fp16.onnx` (`python models/convert_faceres.py faceres-deep.json faceres-deep.bin OUT --fp16`
on the tarball's files).

Per round, on the faces of the 4-face test photo (tests/helpers.tiled, as tools/attribute_cost.py):
the shipped attribute step (pipeline.attribute_outputs: landmarks, one 112 px chip, two nets on it and
its mirror), then each FaceRes variant's extra work (its own aligned chip from the same landmarks and one
forward, or a batch of two with the mirror), interleaved so load changes hit every row alike. Printed: median ms per
face and the ratio (shipped + variant) / shipped, the issue's "attributes per face" multiple; and,
load-free, each net's multiply-adds per forward (onnx shape inference; onnx is build-only).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import cv2

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

# (name, net file, chip size, mirror)
VARIANTS = [(f"{net}-{size}{'' if mirror else '-nomirror'}", net_file, size, mirror)
            for net, net_file, sizes in (("deep", "faceres-deep.onnx", (224, 160, 128, 96)),
                                         ("deep-fp16", "faceres-deep-fp16.onnx", (160, 128)))
            for size in sizes for mirror in (True, False)]


def mega_macs(path: Path, side: int | None = None) -> float:
    """Multiply-adds of one forward (Conv, Gemm, MatMul with weight initialisers), in millions."""
    import numpy as np
    import onnx
    from onnx import shape_inference

    model = onnx.load(str(path))
    if side:
        dims = model.graph.input[0].type.tensor_type.shape.dim
        dims[2].dim_value = dims[3].dim_value = side
    model = shape_inference.infer_shapes(model)
    g = model.graph
    shapes = {v.name: [d.dim_value for d in v.type.tensor_type.shape.dim] for v in [*g.value_info, *g.output]}
    weights = {i.name: list(i.dims) for i in g.initializer}
    total = 0
    for node in g.node:
        w = weights.get(node.input[1]) if len(node.input) > 1 else None
        if node.op_type == "Conv" and w:
            total += int(np.prod(shapes[node.output[0]][1:])) * int(np.prod(w[1:]))
        elif node.op_type in ("Gemm", "MatMul") and w:
            total += int(np.prod(w))
    return total / 1e6


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nets", type=Path, required=True)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    import dlib
    from helpers import tiled

    from handler import runtime
    from handler.chips import landmark_rect
    from handler.pipeline import attribute_outputs, detect_faces, rank_faces
    from handler.service import DEFAULT_OPTIONS

    models = runtime.get_models()
    variants = [v for v in VARIANTS if (args.nets / v[1]).is_file()]  # the fp16 file is optional
    nets = {f: cv2.dnn.readNetFromONNX(str(args.nets / f)) for f in {v[1] for v in variants}}
    image = tiled(["astronaut.png", "camera.png", "astronaut.png", "camera.png"], size=480)
    o = DEFAULT_OPTIONS
    faces = rank_faces(image, detect_faces(image, models, o.min_confidence, o.detail, o.detect_max_side))

    def shipped() -> None:
        attribute_outputs(image, faces, models)

    # The landmarks are the shipped step's; an integrated voice reuses them and cuts only its own chip.
    shapes = [models["landmarks"].landmarks(image, landmark_rect(face.raw_box, models["landmarks"].spec.input[
        "box_to_rect"])) for face in faces]

    def variant(net_file: str, size: int, mirror: bool):
        def run() -> None:
            for shape in shapes:
                chip = dlib.extract_image_chip(image, dlib.get_face_chip_details(shape, size, 0.4))
                nets[net_file].setInput(cv2.dnn.blobFromImages([chip, cv2.flip(chip, 1)] if mirror else [chip]))
                nets[net_file].forward()
        return run

    rows = {"shipped": shipped, **{v[0]: variant(*v[1:]) for v in variants}}
    for run in rows.values():  # warm every net at its sizes
        run()
    times: dict[str, list[float]] = {name: [] for name in rows}
    for _ in range(args.rounds):
        for name, run in rows.items():
            t0 = time.perf_counter()
            for _ in range(args.repeat):
                run()
            times[name].append((time.perf_counter() - t0) * 1000 / args.repeat / len(faces))
    base = times["shipped"]
    shipped_macs = 2 * sum(mega_macs(ROOT / "models" / f) for f in ("agegender-faceapi.onnx", "gender-v1.onnx"))
    print(f"multiply-adds: shipped step {shipped_macs:.0f} M (two nets, chip and mirror); FaceRes per forward "
          + ", ".join(f"{side} px {mega_macs(args.nets / 'faceres-deep.onnx', side):.0f} M"
                      for side in (224, 160, 128, 96)))
    print(f"{len(faces)} faces, {args.rounds} rounds x {args.repeat}; load average {os.getloadavg()[0]:.1f}")
    print("| attribute step | ms/face (median) | x shipped (median of paired rounds) |\n|---|---|---|")
    print(f"| shipped | {statistics.median(base):.2f} | 1.00 |")
    for name, t in times.items():
        if name != "shipped":
            ratio = statistics.median((b + x) / b for b, x in zip(base, t))
            print(f"| shipped + FaceRes {name} | {statistics.median(base) + statistics.median(t):.2f} | {ratio:.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
