#!/usr/bin/env python3
"""What a FaceRes voice would add to the attribute step, per face, paired in one process (issue 27).

    .venv/bin/python tools/faceres_cost.py --nets DIR [--rounds 7]

Per round, on the faces of the 4-face test photo (tests/helpers.tiled, as tools/attribute_cost.py):
the shipped attribute step (pipeline.attribute_outputs: landmarks, one 112 px chip, two nets on it and
its mirror), then each FaceRes variant's extra work (its own aligned chip from the same landmarks and one
forward, or a batch of two with the mirror), interleaved so load changes hit every row alike. Printed: median ms per
face and the ratio (shipped + variant) / shipped, the issue's "attributes per face" multiple.
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
VARIANTS = [(f"{net}-{size}{'' if mirror else '-nomirror'}", f"{net_file}", size, mirror)
            for net, net_file in (("deep", "faceres-deep.onnx"), ("deep-fp16", "faceres-deep-fp16.onnx"))
            for size in (224, 160, 128, 96) for mirror in (True, False)]


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
    nets = {f: cv2.dnn.readNetFromONNX(str(args.nets / f)) for f in {v[1] for v in VARIANTS}}
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

    rows = {"shipped": shipped, **{v[0]: variant(*v[1:]) for v in VARIANTS}}
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
