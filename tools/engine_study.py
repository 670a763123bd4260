#!/usr/bin/env python3
"""Bare forwards of every net on OpenCV (cv2.FaceDetectorYN / cv2.dnn) against onnxruntime, and batch sizes.

    .venv/bin/python tools/engine_study.py [--rounds 15]

One process, one thread per engine, the two engines alternating, medians (docs/decisions.md,
"Engine" and "Attribute nets"). onnxruntime comes from requirements-eval.txt: it is measured
here, never run by the function. YuNet through onnxruntime is its forward only (no decode or
NMS), on inputs padded to a multiple of 32 (its Add nodes need equal map sizes).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
MODELS = ROOT / "models"
PHOTO = ROOT.parent / "shared" / "photos" / "woman1.jpg"


def median_ms(run, rounds: int) -> float:
    run()
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        run()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def yunet_rows(rounds: int) -> list[tuple[str, float, float]]:
    import onnx
    import onnxruntime as ort

    model = onnx.load(str(MODELS / "yunet.onnx"))
    dims = model.graph.input[0].type.tensor_type.shape.dim
    dims[2].dim_param, dims[3].dim_param = "height", "width"  # ours declares 640x640, as OpenCV Zoo's
    for out in model.graph.output:
        out.type.tensor_type.shape.dim[1].dim_param = "cells"
    session = ort.InferenceSession(model.SerializeToString(), _one_thread(ort))
    photo = cv2.imread(str(PHOTO)) if PHOTO.is_file() else cv2.imread(str(ROOT / "tests/fixtures/astronaut.png"))
    rows = []
    for width, height in ((640, 480), (1280, 960), (2016, 1504)):
        image = cv2.resize(photo, (width, height), interpolation=cv2.INTER_AREA)
        detector = cv2.FaceDetectorYN.create(str(MODELS / "yunet.onnx"), "", (width, height), 0.5, 0.3, 5000)
        blob = cv2.dnn.blobFromImage(image)
        n = rounds if width < 1000 else max(3, rounds // 3)
        rows.append((f"YuNet {width}x{height}", median_ms(lambda: detector.detect(image), n),  # noqa: B023
                     median_ms(lambda: session.run(None, {"input": blob}), n)))  # noqa: B023
    return rows


def _one_thread(ort):
    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    return options


def attribute_rows(rounds: int) -> list[tuple[str, float, float]]:
    import onnxruntime as ort

    rng = np.random.default_rng(0)
    rows = []
    for name, file, size in (("face-api.js", "agegender-faceapi.onnx", 112), ("Cydral gender", "gender-v1.onnx", 32)):
        path = str(MODELS / file)
        net, batched = cv2.dnn.readNetFromONNX(path), cv2.dnn.readNetFromONNX(path)
        session = ort.InferenceSession(path, _one_thread(ort))
        chip = rng.random((1, 3, size, size), np.float32) * 255
        pair = np.ascontiguousarray(np.concatenate([chip, chip[..., ::-1]]))

        def two_forwards(net=net, chip=chip) -> None:
            for x in (chip, np.ascontiguousarray(chip[..., ::-1])):
                net.setInput(x)
                net.forward()

        def batch_of_two(net=batched, pair=pair) -> None:
            net.setInput(pair)
            net.forward()

        feed = {session.get_inputs()[0].name: pair}
        rows.append((f"{name} chip + mirror, 2 forwards", median_ms(two_forwards, rounds * 3),
                     median_ms(lambda: session.run(None, feed), rounds * 3)))  # noqa: B023
        rows.append((f"{name} chip + mirror, batch of 2", median_ms(batch_of_two, rounds * 3), float("nan")))
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=15)
    args = ap.parse_args(argv)
    cv2.setNumThreads(1)
    try:
        rows = yunet_rows(args.rounds) + attribute_rows(args.rounds)
    except ImportError as exc:
        print(f"engine_study: {exc} (onnxruntime comes with requirements-eval.txt)", file=sys.stderr)
        return 1
    print("| net, input | cv2 ms | onnxruntime ms | ort / cv2 |\n|---|---|---|---|")
    for name, cv, ort_ms in rows:
        print(f"| {name} | {cv:.1f} | {ort_ms:.1f} | {ort_ms / cv:.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
