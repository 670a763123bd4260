"""Aligned face chips for the attribute nets, from the detector's box.

The Cydral nets were trained on dlib 5-point aligned chips (padding 0.2).
Naive crops of the detector box give unstable answers, so we do what the nets
expect: map the res10 box to the square dlib's own detector would have drawn
(constants in the manifest, fitted by tools/chip_study.py), run dlib's 5-point
landmark model in it, and let dlib cut the rotated, scaled chip.

dlib's landmark model reads grey intensity as (r + g + b) / 3 and chip
extraction copies channels as they are, so BGR arrays go in unchanged and
BGR chips come out: no colour conversion of the whole photo.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np


def landmark_rect(box: tuple[float, float, float, float], mapping: dict[str, float]) -> tuple[int, int, int, int]:
    """(left, top, right, bottom) of the square the landmark model expects, for an (x1, y1, x2, y2) box."""
    x1, y1, x2, y2 = box
    w, h = x2 - x1, y2 - y1
    cx = (x1 + x2) / 2 + mapping["dx"] * w
    cy = (y1 + y2) / 2 + mapping["dy"] * h
    side = mapping["side"] * math.sqrt(max(w * h, 1.0))
    return (round(cx - side / 2), round(cy - side / 2), round(cx + side / 2), round(cy + side / 2))


def aligned_chip(image: np.ndarray, box: tuple[float, float, float, float], predictor: Any,
                 size: int, padding: float) -> np.ndarray:
    """The size x size aligned chip for the face in `box`, extracted from the original image."""
    import dlib

    shape = predictor.landmarks(image, landmark_rect(box, predictor.spec.input["box_to_rect"]))
    return dlib.extract_image_chip(image, dlib.get_face_chip_details(shape, size, padding))


def square_crop(image: np.ndarray, box: tuple[float, float, float, float], size: int) -> np.ndarray:
    """The size x size crop face-api.js's nets read: the box (clipped to the image) padded black to a centred
    square, then resized (INTER_AREA when shrinking, so a large face in a big photo does not alias)."""
    import cv2

    height, width = image.shape[:2]
    x1, y1 = max(0, round(box[0])), max(0, round(box[1]))
    x2, y2 = min(width, round(box[2])), min(height, round(box[3]))
    crop = image[y1:max(y2, y1 + 1), x1:max(x2, x1 + 1)]
    h, w = crop.shape[:2]
    side = max(w, h)
    top, left = (side - h) // 2, (side - w) // 2
    square = cv2.copyMakeBorder(crop, top, side - h - top, left, side - w - left, cv2.BORDER_CONSTANT, value=0)
    return cv2.resize(square, (size, size), interpolation=cv2.INTER_AREA if side > size else cv2.INTER_LINEAR)
