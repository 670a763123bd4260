#!/usr/bin/env python3
"""Record HSE FaceRes's tf.js outputs for a few inputs: the reference the converted ONNX is tested against.

    .venv/bin/python tools/faceres_reference.py      # needs node (>= 18); run once, commit the JSON

Downloads the pinned tarballs (models/manifest.json): the one holding the FaceRes tf.js graph and
@vladmandic/face-api, whose bundle provides tf.js for node. Runs the graph under node with tf.js's
CPU backend (tools/faceres_js_reference.mjs) on the inputs below and writes
tests/data/faceres_reference.json. tests/unit/test_faceres.py then checks that our ONNX in cv2.dnn
gives the same answers, without node.

The inputs: seeded noise and face crops of the scikit-image test photos (the same crops as
tools/agegender_reference.py), as BGR at the trained 224 px. Our graph subtracts the Caffe
means itself; node gets the centred tensor.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "tests" / "data" / "faceres_reference.json"
sys.path.insert(0, str(ROOT / "models"))
sys.path.insert(0, str(ROOT / "tools"))
from agegender_reference import CROPS  # noqa: E402
from agegender_reference import crop_input as square_crop  # noqa: E402
from convert_faceres import CAFFE_MEAN_BGR, SIZE  # noqa: E402
from fetch import download_tarball  # noqa: E402


def crop_input(photo: str, x: int, y: int, w: int, h: int, mirrored: bool, size: int) -> np.ndarray:
    """BGR uint8 size x size: the box padded (black) to a centred square, INTER_AREA to size."""
    return square_crop(photo, x, y, w, h, mirrored, size, rgb=False)


def inputs(size: int) -> list[tuple[dict, np.ndarray]]:
    """(description, BGR uint8 HWC input) pairs; tests/unit/test_faceres.py rebuilds them the same way."""
    noise = np.random.default_rng(0).integers(0, 256, (size, size, 3), dtype=np.uint8)
    out = [({"kind": "noise", "seed": 0}, noise)]
    for photo, x, y, w, h, mirrored in CROPS:
        out.append(({"kind": "crop", "photo": photo, "box": [x, y, w, h], "mirrored": mirrored},
                    crop_input(photo, x, y, w, h, mirrored, size)))
    return out


def main() -> int:
    manifest = json.loads((ROOT / "models" / "manifest.json").read_text())
    entry = manifest["candidates"]["faceres"]["files"]["weights"]
    size = SIZE  # the graph model fixes its input at the trained size; our ONNX takes any multiple of 32
    cases = inputs(size)
    mean = np.array(CAFFE_MEAN_BGR, np.float64)
    with tempfile.TemporaryDirectory() as tmp:
        unpacked = {}
        for package in (entry["package"], "@vladmandic/face-api"):
            tarball = download_tarball(package, manifest["packages"][package], Path(tmp))
            unpacked[package] = Path(tmp) / package.replace("/", "+")
            with tarfile.open(tarball) as tf:
                tf.extractall(unpacked[package], filter="data")
        model_json, weights_bin = (unpacked[entry["package"]] / m for m in entry["members"])
        fed = [(x.astype(np.float64) - mean).astype(np.float32).ravel().tolist() for _, x in cases]
        (Path(tmp) / "in.json").write_text(json.dumps(fed))
        run = subprocess.run(["node", str(ROOT / "tools" / "faceres_js_reference.mjs"),
                              str(unpacked["@vladmandic/face-api"] / "package"), str(model_json), str(weights_bin),
                              str(Path(tmp) / "in.json")], capture_output=True, text=True, check=True)
        outputs = json.loads(run.stdout.strip().splitlines()[-1])
    spec = manifest["packages"][entry["package"]]
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps({
        "about": f"HSE FaceRes tf.js outputs ({entry['members'][0]} of {entry['package']} {spec['version']}) "
                 "under node (tf.js CPU, @vladmandic/face-api's bundle); written by tools/faceres_reference.py",
        "size": size,
        "cases": [{**desc, "input_sha256": hashlib.sha256(x.tobytes()).hexdigest(),
                   "p_male": round(o["p_male"], 7), "age": round(o["age"], 5)}
                  for (desc, x), o in zip(cases, outputs, strict=True)],
    }, indent=1) + "\n")
    print(f"wrote {OUT.relative_to(ROOT)}: " + ", ".join(f"{o['age']:.2f} y / {o['p_male']:.4f}" for o in outputs))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
