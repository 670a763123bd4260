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
from the points to the template, then one `cv2.warpAffine`; a face more than twice
the chip's size is first halved with cv2.pyrDown, as dlib's own extraction does
(bilinear sampling alone aliases a 200 px face into a 64 px chip).

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
    """Cut the size x size chip that the 2x3 image -> chip `matrix` defines, antialiased as dlib's is.

    dlib's extract_image_chip halves the image with a 5-tap Gaussian ([1 4 6 4 1] / 16, dlib's
    pyramid_down<2>, which is cv2.pyrDown's filter) until the chip is less than 2x smaller than what is
    left, then samples bilinearly: the nets were trained on chips made so, so we do the same.
    """
    scale = math.sqrt(abs(np.linalg.det(matrix[:, :2])))  # chip pixels per image pixel
    levels = 0
    while scale * 2 ** (levels + 1) <= 1.0 + 1e-9:
        levels += 1
    if levels:
        image, matrix = _pyramid_source(image, matrix, size, levels)
    return cv2.warpAffine(image, matrix, (size, size), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=0)


def _pyramid_source(image: np.ndarray, matrix: np.ndarray, size: int,
                    levels: int) -> tuple[np.ndarray, np.ndarray]:
    """The part of `image` the chip covers, halved `levels` times by cv2.pyrDown, and the matrix from
    that smaller image to the chip (only the region is filtered: 0.1-0.3 ms a face, not the whole photo)."""
    inverse = cv2.invertAffineTransform(matrix)
    corners = np.array([[-1, -1, 1], [size, -1, 1], [-1, size, 1], [size, size, 1]], np.float64) @ inverse.T
    step = 2 ** levels
    margin = 3 * step  # the filter's reach, so the region's own edge leaves the chip alone
    height, width = image.shape[:2]
    x0 = max(0, math.floor(corners[:, 0].min()) - margin)
    y0 = max(0, math.floor(corners[:, 1].min()) - margin)
    x1 = min(width, math.ceil(corners[:, 0].max()) + margin)
    y1 = min(height, math.ceil(corners[:, 1].max()) + margin)
    if x1 - x0 < 2 * step or y1 - y0 < 2 * step:  # the chip lies (almost) off the image
        return image, matrix
    small = image[y0:y1, x0:x1]
    for _ in range(levels):
        small = cv2.pyrDown(small)
    # pyrDown's pixel j is centred on its source's pixel 2j.
    to_image = np.array([[step, 0, x0], [0, step, y0], [0, 0, 1]], np.float64)
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
