#!/usr/bin/env python3
"""Record face-api.js's own outputs for a few inputs: the reference the converted ONNX is tested against.

    .venv/bin/python evaluation/agegender_reference.py      # needs node (>= 18); run once, commit the JSON

Downloads the pinned @vladmandic/face-api tarball (models/manifest.json), runs its AgeGenderNet
under node with tf.js's CPU backend (evaluation/agegender_js_reference.mjs) on the inputs below, and
writes tests/data/agegender_reference.json. tests/unit/test_agegender.py then checks that our
ONNX in cv2.dnn gives the same answers, without node.

The inputs: seeded noise, and face crops of the scikit-image test photos (tests/fixtures) padded
to a square, resized to 112 and mirrored. Our graph divides by 256 (face-api.js, the trainer),
the package by 255 (models/convert_agegender.py), so node gets m + (x - m) * 255 / 256: the same
normalised tensor.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "tests" / "data" / "agegender_reference.json"
sys.path.insert(0, str(ROOT / "models"))
from convert_agegender import DIVISOR, MEAN_RGB, SIZE  # noqa: E402
from fetch import download_tarball  # noqa: E402

# (photo, x, y, width, height, mirrored): res10 boxes of the faces in the fixtures.
CROPS = [("astronaut.png", 180, 58, 92, 119, False), ("astronaut.png", 180, 58, 92, 119, True),
         ("camera.png", 198, 114, 58, 85, False), ("chelsea.png", 13, 1, 254, 294, False)]


def crop_input(photo: str, x: int, y: int, w: int, h: int, mirrored: bool, size: int = SIZE,
               rgb: bool = True) -> np.ndarray:
    """RGB (or BGR) uint8 size x size: the box padded (black) to a centred square, INTER_AREA to size."""
    image = cv2.imread(str(ROOT / "tests" / "fixtures" / photo), cv2.IMREAD_COLOR)[y:y + h, x:x + w]
    side = max(w, h)
    top, left = (side - h) // 2, (side - w) // 2
    square = cv2.copyMakeBorder(image, top, side - h - top, left, side - w - left, cv2.BORDER_CONSTANT, value=0)
    out = cv2.resize(square, (size, size), interpolation=cv2.INTER_AREA)
    out = out[:, :, ::-1] if rgb else out
    return np.ascontiguousarray(out[:, ::-1] if mirrored else out)


def inputs() -> list[tuple[dict, np.ndarray]]:
    """(description, RGB uint8 HWC input) pairs; tests/unit/test_agegender.py rebuilds them the same way."""
    noise = np.random.default_rng(0).integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8)
    out = [({"kind": "noise", "seed": 0}, noise)]
    for photo, x, y, w, h, mirrored in CROPS:
        out.append(({"kind": "crop", "photo": photo, "box": [x, y, w, h], "mirrored": mirrored},
                    crop_input(photo, x, y, w, h, mirrored)))
    return out


def main() -> int:
    manifest = json.loads((ROOT / "models" / "manifest.json").read_text())
    spec = manifest["packages"]["@vladmandic/face-api"]
    cases = inputs()
    mean = np.array(MEAN_RGB, np.float64)
    with tempfile.TemporaryDirectory() as tmp:
        tarball = download_tarball("@vladmandic/face-api", spec, Path(tmp))
        with tarfile.open(tarball) as tf:
            tf.extractall(tmp, filter="data")
        fed = [(mean + (x.astype(np.float64) - mean) * 255 / DIVISOR).astype(np.float32).ravel().tolist()
               for _, x in cases]
        (Path(tmp) / "in.json").write_text(json.dumps(fed))
        run = subprocess.run(["node", str(Path(__file__).with_name("agegender_js_reference.mjs")),
                              str(Path(tmp) / "package"), str(Path(tmp) / "in.json")],
                             capture_output=True, text=True, check=True)
        outputs = json.loads(run.stdout.strip().splitlines()[-1])
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps({
        "about": "face-api.js AgeGenderNet outputs from @vladmandic/face-api "
                 f"{spec['version']} under node (tf.js CPU); written by evaluation/agegender_reference.py",
        "cases": [{**desc, "input_sha256": hashlib.sha256(x.tobytes()).hexdigest(),
                   "age": round(o["age"], 5), "p_male": round(o["p_male"], 6)}
                  for (desc, x), o in zip(cases, outputs, strict=True)],
    }, indent=1) + "\n")
    print(f"wrote {OUT.relative_to(ROOT)}: " + ", ".join(f"{o['age']:.2f} y / {o['p_male']:.3f}" for o in outputs))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
