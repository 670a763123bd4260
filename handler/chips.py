"""Aligned face chips for the attribute nets.

The Cydral nets were trained on dlib 5-point aligned chips (padding 0.2).
Naive crops of the detector box give unstable answers, so we do what the nets
expect: map the detector box to the square dlib's own detector would have drawn
(constants in the manifest, fitted by chip_study.py: docs/decisions.md, "Finished studies"), run dlib's 5-point
landmark model in it, and let dlib cut the rotated, scaled chip (`aligned_chip`,
what the pipeline uses).

dlib's landmark model reads grey intensity as (r + g + b) / 3 and chip
extraction copies channels as they are, so BGR arrays go in unchanged and
BGR chips come out: no colour conversion of the whole photo.

Chips cut from the detector's own 5 points instead, with no landmark model, were
measured and not adopted (turned faces read worse): evaluation/landmark_chips.py and
landmark_study.py (a finished study), figures in docs/decisions.md.
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
