"""Face chips for the attribute nets, cut from the detector's box.

The Cydral nets were trained on dlib 5-point aligned chips with padding 0.2.
Rather than ship dlib and a landmark model, we map the detector's box to the
square that dlib's chip would cover, with constants fitted on real photos
(tools/chip_study.py; agreement figures in the README).
"""

from __future__ import annotations

import cv2
import numpy as np

# Fitted by tools/chip_study.py: chip centre offset (fractions of the box's
# width and height) and chip side (fraction of the box's mean side).
CENTER_DX = 0.0
CENTER_DY = 0.05
SIDE_SCALE = 1.3


def chip_square(box: tuple[float, float, float, float]) -> tuple[float, float, float]:
    """(centre x, centre y, side) of the chip square for an (x1, y1, x2, y2) detector box."""
    x1, y1, x2, y2 = box
    w, h = x2 - x1, y2 - y1
    side = SIDE_SCALE * (w + h) / 2
    return (x1 + x2) / 2 + CENTER_DX * w, (y1 + y2) / 2 + CENTER_DY * h, side


def extract_chip(image: np.ndarray, square: tuple[float, float, float], size: int) -> np.ndarray:
    """Cut the square (zero outside the image, as dlib does) and resize it to size x size."""
    cx, cy, side = square
    s = max(round(side), 1)
    x0, y0 = round(cx - side / 2), round(cy - side / 2)
    h, w = image.shape[:2]
    crop = image[max(y0, 0):min(y0 + s, h), max(x0, 0):min(x0 + s, w)]
    top, left = max(-y0, 0), max(-x0, 0)
    bottom, right = s - top - crop.shape[0], s - left - crop.shape[1]
    if top or left or bottom > 0 or right > 0:
        crop = cv2.copyMakeBorder(crop, top, max(bottom, 0), left, max(right, 0), cv2.BORDER_CONSTANT, value=0)
    # INTER_AREA averages when shrinking (dlib low-pass filters too); bilinear when enlarging.
    interp = cv2.INTER_AREA if s > size else cv2.INTER_LINEAR
    return cv2.resize(crop, (size, size), interpolation=interp)
