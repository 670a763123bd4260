"""Aligned face chips for the attribute nets, from the detector's 5 landmarks.

The Cydral nets were trained on dlib 5-point aligned chips (padding 0.2): dlib's
`get_face_chip_details` fits a similarity transform from its 5 landmarks (eye
corners, nose base) onto a mean-face template in a unit square, widened by the
padding on every side, and `extract_image_chip` cuts that square. YuNet's 5
points are other points (eye centres, nose tip, mouth corners), so TEMPLATE below
is where they fall in dlib's unit square: fitted by tools/landmark_study.py on
UTKFace-dev by mapping each face's YuNet points through its dlib chip transform
and averaging (the least-squares template for matching dlib's chips; see
docs/ or README "Accuracy" for the study's numbers).

The chip is a closed-form least-squares similarity (Umeyama without reflection)
from the points to the template, then one `cv2.warpAffine`. A face much larger than
the chip is first shrunk with INTER_AREA (dlib uses an image pyramid for the same
reason): bilinear sampling alone aliases a 200 px face into a 64 px chip.

Channels are copied as they are, so BGR photos give BGR chips.
"""

from __future__ import annotations

import math
from typing import Any

import cv2
import numpy as np

# YuNet's points, in its order: eye centre and mouth corner on the image's left (the
# person's right) first. Unit-square coordinates of dlib's face frame, before padding
# (x right, y down; dlib's own template has the eye corners at y 0.21-0.23 and the nose
# base at 0.63). Fitted on the even rows of UTKFace-dev's labels.csv by
# `tools/landmark_study.py`.
TEMPLATE = np.array([
    [0.2285, 0.2309],   # left eye centre (in the image)
    [0.7550, 0.2314],   # right eye centre
    [0.4907, 0.5357],   # nose tip
    [0.2791, 0.8024],   # left mouth corner
    [0.7086, 0.8024],   # right mouth corner
])


def similarity(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """The 2x3 similarity (rotation, uniform scale, translation; no reflection) that maps `src` points
    onto `dst` with the least squared error (Umeyama's closed form in 2-D)."""
    src, dst = np.asarray(src, np.float64), np.asarray(dst, np.float64)
    ms, md = src.mean(0), dst.mean(0)
    s, d = src - ms, dst - md
    norm = float((s * s).sum())
    if norm <= 0:
        raise ValueError("the source points coincide: no similarity is defined")
    a = float((s * d).sum()) / norm                                     # scale * cos(angle)
    b = float((s[:, 0] * d[:, 1] - s[:, 1] * d[:, 0]).sum()) / norm     # scale * sin(angle)
    rot = np.array([[a, -b], [b, a]])
    return np.hstack([rot, (md - rot @ ms)[:, None]])


def template_pixels(size: int, padding: float, template: np.ndarray = TEMPLATE) -> np.ndarray:
    """The template in chip pixel coordinates (pixel centres at 0 .. size - 1) for a size x size chip."""
    unit = (np.asarray(template, np.float64) + padding) / (1 + 2 * padding)
    return unit * size - 0.5


def chip_matrix(points: np.ndarray, size: int, padding: float, template: np.ndarray = TEMPLATE) -> np.ndarray:
    """The 2x3 image -> chip transform for a face's 5 landmarks (image pixels, in TEMPLATE's order)."""
    return similarity(points, template_pixels(size, padding, template))


def aligned_chip(image: np.ndarray, points: np.ndarray, size: int, padding: float,
                 template: np.ndarray = TEMPLATE) -> np.ndarray:
    """The size x size aligned chip of the face whose 5 landmarks are `points`; black beyond the image."""
    matrix = chip_matrix(points, size, padding, template)
    return warp_chip(image, matrix, size)


def warp_chip(image: np.ndarray, matrix: np.ndarray, size: int) -> np.ndarray:
    """Cut the size x size chip that the 2x3 image -> chip `matrix` defines, antialiased when it shrinks."""
    scale = math.sqrt(abs(np.linalg.det(matrix[:, :2])))  # chip pixels per image pixel
    factor = math.floor(1 / scale) if scale > 0 else 1
    if factor >= 2:
        image, matrix = _shrunk_source(image, matrix, size, factor)
    return cv2.warpAffine(image, matrix, (size, size), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=0)


def _shrunk_source(image: np.ndarray, matrix: np.ndarray, size: int,
                   factor: int) -> tuple[np.ndarray, np.ndarray]:
    """The part of `image` the chip covers, shrunk by a whole `factor` with INTER_AREA (a box filter), and
    the matrix from that smaller image to the chip.

    As dlib's pyramid does, the shrink leaves a bilinear step of 1-2x: a whole factor keeps OpenCV's
    fast path (0.1 ms against 0.5 ms for an arbitrary ratio on a 200 px face).
    """
    inverse = cv2.invertAffineTransform(matrix)
    corners = np.array([[-1, -1, 1], [size, -1, 1], [-1, size, 1], [size, size, 1]], np.float64) @ inverse.T
    height, width = image.shape[:2]
    x0, y0 = max(0, math.floor(corners[:, 0].min()) - factor), max(0, math.floor(corners[:, 1].min()) - factor)
    x1, y1 = min(width, math.ceil(corners[:, 0].max()) + factor), min(height, math.ceil(corners[:, 1].max()) + factor)
    w, h = (x1 - x0) // factor, (y1 - y0) // factor
    if w < 2 or h < 2:  # the chip lies (almost) off the image: nothing worth shrinking
        return image, matrix
    small = cv2.resize(image[y0:y0 + h * factor, x0:x0 + w * factor], (w, h), interpolation=cv2.INTER_AREA)
    # Small pixel j averages source pixels j*factor .. j*factor + factor - 1: its centre is (j + 0.5) * factor - 0.5.
    offset = 0.5 * factor - 0.5
    to_image = np.array([[factor, 0, x0 + offset], [0, factor, y0 + offset], [0, 0, 1]], np.float64)
    return small, matrix @ to_image


# ---- dlib's 5-point alignment (today's path; removed once the detector's landmarks are wired) ----

def landmark_rect(box: tuple[float, float, float, float], mapping: dict[str, float]) -> tuple[int, int, int, int]:
    """(left, top, right, bottom) of the square the landmark model expects, for an (x1, y1, x2, y2) box."""
    x1, y1, x2, y2 = box
    w, h = x2 - x1, y2 - y1
    cx = (x1 + x2) / 2 + mapping["dx"] * w
    cy = (y1 + y2) / 2 + mapping["dy"] * h
    side = mapping["side"] * math.sqrt(max(w * h, 1.0))
    return (round(cx - side / 2), round(cy - side / 2), round(cx + side / 2), round(cy + side / 2))


def dlib_chip(image: np.ndarray, box: tuple[float, float, float, float], predictor: Any,
              size: int, padding: float) -> np.ndarray:
    """The size x size dlib-aligned chip for the face in `box`, extracted from the original image."""
    import dlib

    shape = predictor.landmarks(image, landmark_rect(box, predictor.spec.input["box_to_rect"]))
    return dlib.extract_image_chip(image, dlib.get_face_chip_details(shape, size, padding))
