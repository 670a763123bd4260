"""Face chips cut from the detector's own 5 points (YuNet's eye centres, nose tip and mouth corners).

A study alternative to handler/chips.py's dlib alignment, with no landmark model: TEMPLATE is
where those points fall in dlib's face frame, fitted by landmark_study.py (finished: docs/decisions.md).
It matched dlib's chips on UTKFace-dev and in groups but read turned faces worse (docs/decisions.md, "dlib stays"),
so the runtime does not use it; it lives here, tested, for the next attempt.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

# YuNet's points, in its order (handler.detection.Detection.landmarks), in dlib's unit face
# frame before padding (x right, y down; dlib's own template has the eye corners at y 0.21-0.23
# and the nose base at 0.63). Fitted on the even rows of UTKFace-dev's labels.csv by
# landmark_study.py at 59f7979 (YuNet's points of the pipeline's detection, dlib's chips from its box).
TEMPLATE = np.array([
    [0.2174, 0.1954],   # eye centre on the image's left (the person's right eye)
    [0.7578, 0.2045],   # eye centre on the image's right
    [0.4748, 0.5060],   # nose tip
    [0.2445, 0.7261],   # mouth corner on the image's left
    [0.7097, 0.7321],   # mouth corner on the image's right
])


# The points the similarity is fitted on: both eyes and the nose tip, as dlib fits its eye corners and
# nose base. The mouth corners pull a turned face's chip off: with them the two turned men among our
# real photos (tests/fixtures camera.png, group6.jpg) read p(male) 0.32 and 0.39, without them 0.94
# and 0.87 (dlib 0.98 and 0.75); on UTKFace-dev and in groups see docs/decisions.md.
ALIGN_POINTS = (0, 1, 2)


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
    """The 2x3 image -> chip transform that puts `points` (image pixels) nearest to `template`'s points."""
    return similarity(points, template_pixels(size, padding, template))


def landmark_chip(image: np.ndarray, landmarks: np.ndarray, size: int, padding: float) -> np.ndarray:
    """The size x size aligned chip of the face whose 5 YuNet landmarks (image pixels) are given;
    black beyond the image."""
    use = list(ALIGN_POINTS)
    matrix = chip_matrix(np.asarray(landmarks, np.float64)[use], size, padding, TEMPLATE[use])
    return warp_chip(image, matrix, size)


def warp_chip(image: np.ndarray, matrix: np.ndarray, size: int) -> np.ndarray:
    """Cut the size x size chip that the 2x3 image -> chip `matrix` defines, sharp but not aliased.

    Bilinear sampling alone aliases a face many times the chip's size, so the face is first
    halved with cv2.pyrDown (a 5-tap Gaussian, [1 4 6 4 1] / 16, as dlib's pyramid_down<2>)
    while at least 4x would be left to shrink. dlib halves further, down to under 2x, but its
    softer chips gave a worse age MAE here: +0.33 y [0.12, 0.56] against stopping at 4x on 2,053
    faces in 1 MP groups and +0.24 y on UTKFace-dev (landmark_study.py, docs/decisions.md).
    """
    scale = math.sqrt(abs(np.linalg.det(matrix[:, :2])))  # chip pixels per image pixel
    levels = 0
    while scale * 2 ** (levels + 2) <= 1.0 + 1e-9:
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
