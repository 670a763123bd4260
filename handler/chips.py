"""Aligned face chips for the attribute nets, cut as dlib cuts them.

The Cydral nets were trained on dlib 5-point aligned chips (padding 0.2).
Naive crops of the detector box give unstable answers, so we do what the nets
expect: map the detector box to the square dlib's own detector would have drawn
(constants in the manifest, fitted by chip_study.py: docs/decisions.md, "Finished studies"), run dlib's 5-point
landmark model in it (handler/landmarks.py) and cut the rotated, scaled chip (`aligned_chips`,
what the pipeline uses) the way dlib 20.0.1's `get_face_chip_details` and `extract_image_chip`
do (dlib/image_transforms/interpolation.h), in numpy and cv2 with dlib itself out of the runtime
(docs/decisions.md, "Landmarks without dlib"): the same chips, tests/unit/test_landmarks_parity.py.

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

import cv2
import numpy as np

# dlib's 5-point face template (get_face_chip_details): the eye corners (the image's right eye's
# outer and inner, then the left eye's outer and inner) and the nose base, in the unit face frame.
TEMPLATE = np.array([[0.8595674595992, 0.2134981538014], [0.6460604764104, 0.2289674387677],
                     [0.1205750620789, 0.2137274526848], [0.3340850613712, 0.2290642403242],
                     [0.4901123135679, 0.6277975316475]])


def landmark_rect(box: tuple[float, float, float, float], mapping: dict[str, float]) -> tuple[int, int, int, int]:
    """(left, top, right, bottom) of the square the landmark model expects, for an (x1, y1, x2, y2) box."""
    x1, y1, x2, y2 = box
    w, h = x2 - x1, y2 - y1
    cx = (x1 + x2) / 2 + mapping["dx"] * w
    cy = (y1 + y2) / 2 + mapping["dy"] * h
    side = mapping["side"] * math.sqrt(max(w * h, 1.0))
    return (round(cx - side / 2), round(cy - side / 2), round(cx + side / 2), round(cy + side / 2))


def aligned_chips(image: np.ndarray, boxes: list[tuple[float, float, float, float]], predictor: Any,
                  size: int, padding: float) -> list[np.ndarray]:
    """The size x size aligned chip for the face in each (x1, y1, x2, y2) box, cut from the original image.

    The landmark model runs on all faces at once (its per-call cost is most of a face's)."""
    if not boxes:
        return []
    mapping = predictor.spec.input["box_to_rect"]
    points = predictor.landmarks(image, [landmark_rect(box, mapping) for box in boxes])
    return [face_chip(image, p, size, padding) for p in points]


def face_chip(image: np.ndarray, points: np.ndarray, size: int, padding: float) -> np.ndarray:
    """dlib.extract_image_chip(image, dlib.get_face_chip_details(points, size, padding)) for 5 integer points."""
    angle, rect = chip_placement(points, size, padding)
    return extract_chip(image, angle, rect, size)


def chip_placement(points: np.ndarray, size: int, padding: float) -> tuple[float, tuple[float, float, float, float]]:
    """dlib's chip_details for a face's 5 points: the rotation (radians) and the chip's (l, t, r, b) before it.

    The least-squares similarity from the template (in chip pixels) to the points gives the
    angle and scale; the rectangle is the chip's size times the scale, centred where the chip's
    centre maps, in dlib's inclusive convention (width = r - l + 1).
    """
    src = (padding + TEMPLATE) / (2 * padding + 1) * size
    dst = np.asarray(points, np.float64)
    ms, md = src.mean(axis=0), dst.mean(axis=0)
    s, d = src - ms, dst - md
    norm = float((s * s).sum())
    a = float((s * d).sum()) / norm                                     # scale * cos(angle)
    b = float((s[:, 0] * d[:, 1] - s[:, 1] * d[:, 0]).sum()) / norm     # scale * sin(angle)
    tx, ty = md[0] - (a * ms[0] - b * ms[1]), md[1] - (b * ms[0] + a * ms[1])
    half = size / 2.0
    cx, cy = a * half - b * half + tx, b * half + a * half + ty
    side = size * math.sqrt(a * a + b * b) - 1
    return math.atan2(b, a), (cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2)


def _area(rect: tuple[float, float, float, float]) -> float:
    left, top, right, bottom = rect
    return 0.0 if top > bottom or left > right else (right - left + 1) * (bottom - top + 1)


def _down(rect: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
    """A rectangle's place one level down dlib's pyramid_down<2> (a point p goes to p / 2 - (1.25, 0.75))."""
    left, top, right, bottom = rect
    return left / 2.0 - 1.25, top / 2.0 - 0.75, right / 2.0 - 1.25, bottom / 2.0 - 0.75


def _corners(rect: tuple[float, float, float, float], angle: float) -> np.ndarray:
    """The rectangle's top-left, top-right, bottom-left and bottom-right corners rotated by `angle` about its centre."""
    left, top, right, bottom = rect
    cx, cy = (left + right) / 2.0, (top + bottom) / 2.0
    sin, cos = math.sin(angle), math.cos(angle)
    out = []
    for x, y in ((left, top), (right, top), (left, bottom), (right, bottom)):
        dx, dy = x - cx, y - cy
        out.append((cos * dx - sin * dy + cx, sin * dx + cos * dy + cy))
    return np.array(out)


def _lround(x: float) -> int:
    """C's lround: halves away from zero (Python's round goes to even)."""
    return int(math.copysign(math.floor(abs(x) + 0.5), x))


def pyramid_down(image: np.ndarray) -> np.ndarray:
    """dlib's pyramid_down<2> on an RGB image: a 5x5 [1 4 6 4 1]^2 / 256 filter, truncated, output pixel
    (r, c) centred on input (2r + 2, 2c + 2), (n - 3) // 2 pixels a side.

    cv2.pyrDown's pixel j is centred on 2j, so dlib's r is its r + 1; on float32 its sums of
    integers are exact, and flooring the exact quotient is dlib's integer division."""
    rows, cols = image.shape[:2]
    if rows <= 8 or cols <= 8:
        return np.zeros((0, 0, 3), np.uint8)
    down = cv2.pyrDown(image.astype(np.float32))
    return np.floor(down[1:1 + (rows - 3) // 2, 1:1 + (cols - 3) // 2]).astype(np.uint8)


def extract_chip(image: np.ndarray, angle: float, rect: tuple[float, float, float, float], size: int) -> np.ndarray:
    """dlib's extract_image_chip (bilinear) for one size x size chip at `rect` rotated by `angle`.

    dlib crops the rotated rectangle's bounding box grown by a margin, halves that crop with its
    pyramid while the next level still holds more than size^2 pixels, and samples each chip pixel
    bilinearly from the chosen level: black when any of the 4 neighbours is off it, and the
    interpolated value truncated to an integer, as dlib does. (dlib copies pixels instead when the
    angle is exactly 0 and the scale exactly 1, which a fit to real landmarks does not give.)
    """
    depth, grow, level_rect = 0, 2.0, _down(rect)
    while _area(level_rect) > size * size:
        level_rect = _down(level_rect)
        depth += 1
        grow = grow * 2 + 2
    corners = _corners(rect, angle)
    rows, cols = image.shape[:2]
    box = [max(corners[:, 0].min() - grow, 0.0), max(corners[:, 1].min() - grow, 0.0),
           min(corners[:, 0].max() + grow, cols - 1.0), min(corners[:, 1].max() + grow, rows - 1.0)]
    left, top, right, bottom = map(_lround, box)
    black = np.zeros((size, size, 3), np.uint8)
    if left > right or top > bottom:
        return black
    source = image[top:bottom + 1, left:right + 1]
    local = (rect[0] - left, rect[1] - top, rect[2] - left, rect[3] - top)
    while _area(_down(local)) > size * size:
        source = pyramid_down(source)
        local = _down(local)
    tl, tr, bl, _ = _corners(local, angle)
    # The affine map from chip pixels to the source: dlib fits it to three corners; it is exact.
    m00, m10 = (tr - tl) / (size - 1)
    m01, m11 = (bl - tl) / (size - 1)
    c = np.arange(size, dtype=np.float64)[None, :]
    r = np.arange(size, dtype=np.float64)[:, None]
    x = ((m00 * c + m01 * r) + tl[0]).ravel()
    y = ((m10 * c + m11 * r) + tl[1]).ravel()
    x0, y0 = np.floor(x), np.floor(y)
    height, width = source.shape[:2]
    inside = (x0 >= 0) & (y0 >= 0) & (x0 + 1 < width) & (y0 + 1 < height)
    if not inside.any():
        return black
    # One contiguous copy of the rows the chip reads, gathered by flat index: per channel, 1-D arrays
    # (a third faster than (N, 3) rows with broadcast weights).
    first = int(y0[inside].min())
    block = np.ascontiguousarray(source[first:int(y0[inside].max()) + 2]).ravel()
    at = np.where(inside, (y0 - first) * width + x0, 0).astype(np.intp) * 3
    lr, tb = x - x0, y - y0
    wl, wt = 1 - lr, 1 - tb
    chip = np.empty((size * size, 3), np.uint8)
    for channel in range(3):
        tl_, tr_, bl_, br_ = (block.take(at + channel + 3 * step).astype(np.float64)
                              for step in (0, 1, width, width + 1))
        # dlib's expression and order; the uint8 store truncates as its cast does.
        chip[:, channel] = wt * (wl * tl_ + lr * tr_) + tb * (wl * bl_ + lr * br_)
    chip[~inside] = 0
    return chip.reshape(size, size, 3)
