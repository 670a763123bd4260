"""Faces of any size in one call: a coarse whole-photo pass, finer tiled passes, one merge.

res10 sees its input at 300x300 and finds faces from about 36 px of that input
up to the whole frame. Squashing a 12 MP group photo to 300x300 makes a 250 px
face 19 px: invisible. So detection runs as a pyramid:

- a coarse pass: the whole photo letterboxed into 300x300 (aspect ratio kept)
  finds every face bigger than ~12 % of the long side;
- finer levels, each LEVEL_RATIO larger, up to the photo's own size (at most
  `fine_side`): a level wider or taller than TILE is cut into tiles of at most
  TILE x TILE overlapping by OVERLAP px, so the net's activations (about 170 MB
  per megapixel of input) stay bounded whatever the photo's size. A tile keeps
  faces up to OVERLAP px (larger ones are a coarser level's) and drops boxes
  touching an inner edge (the face is whole in the neighbouring tile). The
  input shape changes from pass to pass: cv2.dnn re-allocates then, which
  measured within noise of a same-shape forward for this net;
- non-maximum suppression across all passes.

`detail="auto"` (the default) skips the finer levels when the coarse pass finds
a dominant face (a portrait or selfie: as fast as one 300x300 forward);
`"full"` always runs them; `"fast"` runs the coarse pass only.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

DETAILS = ("auto", "full", "fast")
COARSE_SIDE = 300
TILE = 768
OVERLAP = 128
LEVEL_RATIO = 2.5
# "auto": a coarse face at least this fraction of the photo's short side makes it a portrait.
DOMINANT_FRACTION = 0.2
# Tile boxes bigger than this are left to coarser levels: faces up to OVERLAP are whole in some tile.
# Keeping up to 1.5x OVERLAP found 5 more of 160 faces of 250 px in 12 MP photos, but also made boxes on
# half faces and between faces (3 false positives in 120 faces of 400 px), so it stays at OVERLAP.
_MAX_TILE_FACE = OVERLAP
# Boxes within this many tile px of an inner tile edge belong to the neighbouring tile.
_EDGE_MARGIN = 4
_NMS_IOU = 0.35
# A box mostly inside a stronger one is the same face seen at another scale.
_CONTAINED = 0.75

Detection = tuple[float, float, float, float, float]  # x1, y1, x2, y2, confidence (pixels, unclipped)
# Runs the net on one HxWx3 BGR input at that input's size; returns rows of
# (confidence, x1, y1, x2, y2) normalised to the input.
Forward = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class Level:
    """One finer pass: the photo resized so its long side is `side`, then tiled."""

    side: int


def fine_levels(width: int, height: int, fine_side: int) -> list[Level]:
    """The finer levels for a photo, coarse to fine; none when the photo is about the coarse pass's size."""
    finest = min(max(width, height), fine_side)
    sides = []
    side = COARSE_SIDE * LEVEL_RATIO
    while side < finest * 0.9:
        sides.append(round(side))
        side *= LEVEL_RATIO
    if finest > COARSE_SIDE * 1.25:
        sides.append(finest)
    return [Level(s) for s in sides]


def tile_spans(length: int) -> list[tuple[int, int]]:
    """(start, size) of the fewest equal tiles of at most TILE covering `length`, overlapping by >= OVERLAP."""
    if length <= TILE:
        return [(0, length)]
    n = math.ceil((length - OVERLAP) / (TILE - OVERLAP))
    size = math.ceil((length + (n - 1) * OVERLAP) / n)
    return [(round(i * (length - size) / (n - 1)), size) for i in range(n)]


def _letterbox(image: np.ndarray, side: int, fill: tuple[float, float, float]) -> tuple[np.ndarray, float]:
    """`image` scaled so its long side is `side`, padded to side x side with `fill`; (canvas, scale)."""
    height, width = image.shape[:2]
    scale = side / max(width, height)
    w, h = max(1, round(width * scale)), max(1, round(height * scale))
    canvas = np.empty((side, side, 3), np.uint8)
    canvas[:] = fill
    # INTER_AREA: shrinking a 12 MP photo with bilinear aliases and hides faces.
    canvas[:h, :w] = cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA)
    return canvas, scale


def coarse_pass(image: np.ndarray, forward: Forward, fill: tuple[float, float, float],
                min_confidence: float) -> list[Detection]:
    """The whole photo, aspect ratio kept, at the net's own 300x300."""
    canvas, scale = _letterbox(image, COARSE_SIDE, fill)
    rows = forward(canvas)
    rows = rows[rows[:, 0] >= min_confidence]
    return [(*(r[1:5] * COARSE_SIDE / scale).tolist(), float(r[0])) for r in rows]


def level_pass(image: np.ndarray, level: Level, forward: Forward, min_confidence: float) -> list[Detection]:
    """Faces up to OVERLAP px at one level, from its overlapping tiles, in the photo's pixels."""
    height, width = image.shape[:2]
    scale = level.side / max(width, height)
    w, h = max(1, round(width * scale)), max(1, round(height * scale))
    resized = cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    out = []
    for y0, th in tile_spans(h):
        for x0, tw in tile_spans(w):
            rows = forward(resized[y0:y0 + th, x0:x0 + tw])
            rows = rows[rows[:, 0] >= min_confidence]
            for confidence, nx1, ny1, nx2, ny2 in rows.tolist():
                x1, y1, x2, y2 = nx1 * tw, ny1 * th, nx2 * tw, ny2 * th
                if max(x2 - x1, y2 - y1) > _MAX_TILE_FACE:
                    continue  # a coarser level's face (and maybe cut by this tile)
                if ((x0 > 0 and x1 < _EDGE_MARGIN) or (y0 > 0 and y1 < _EDGE_MARGIN)
                        or (x0 + tw < w and x2 > tw - _EDGE_MARGIN) or (y0 + th < h and y2 > th - _EDGE_MARGIN)):
                    continue  # cut by an inner edge: whole in the neighbouring tile
                out.append(((x0 + x1) / scale, (y0 + y1) / scale, (x0 + x2) / scale, (y0 + y2) / scale, confidence))
    return out


def merge(detections: list[Detection]) -> list[Detection]:
    """Non-maximum suppression across passes: overlapping (IoU) or nested boxes keep the most confident."""
    kept: list[Detection] = []
    for det in sorted(detections, key=lambda d: d[4], reverse=True):
        x1, y1, x2, y2, _ = det
        area = max(x2 - x1, 1e-6) * max(y2 - y1, 1e-6)
        duplicate = False
        for k in kept:
            iw = min(x2, k[2]) - max(x1, k[0])
            ih = min(y2, k[3]) - max(y1, k[1])
            if iw <= 0 or ih <= 0:
                continue
            inter = iw * ih
            k_area = max(k[2] - k[0], 1e-6) * max(k[3] - k[1], 1e-6)
            if inter / (area + k_area - inter) > _NMS_IOU or inter / min(area, k_area) > _CONTAINED:
                duplicate = True
                break
        if not duplicate:
            kept.append(det)
    return kept


def is_dominant(det: Detection, width: int, height: int) -> bool:
    """A face big enough that the photo is a portrait: no need to look for small faces."""
    return det[3] - det[1] >= DOMINANT_FRACTION * min(width, height)


def detect_multiscale(image: np.ndarray, forward: Forward, fill: tuple[float, float, float], min_confidence: float,
                      detail: str = "auto", fine_side: int = 2048) -> list[Detection]:
    """Every face in a BGR image as (x1, y1, x2, y2, confidence) in its pixels, most confident first."""
    height, width = image.shape[:2]
    found = coarse_pass(image, forward, fill, min_confidence)
    if detail == "fast" or (detail == "auto" and any(is_dominant(d, width, height) for d in found)):
        return merge(found)
    for level in fine_levels(width, height, fine_side):
        found += level_pass(image, level, forward, min_confidence)
    return merge(found)
