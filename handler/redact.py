"""The redacted photo: every face, generously boxed, pixelated beyond recognition; nothing drawn.

Redaction errs the other way from analysis. A face the analysis misses costs one
answer; a face the redaction misses is a privacy leak, while a false alarm only
costs a pixelated patch of background. So it looks again with a lower detector
threshold, covers every face (beyond `max_faces`, blurry or tiny ones too) and
grows each box to take in hair, ears and chin.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from handler.face import Face
from handler.models import Models
from handler.options import Options
from handler.pipeline import detect_faces

# Detector threshold for redaction (analysis uses MIN_CONFIDENCE, 0.75): docs/redaction.md
# gives the measurement behind 0.2 (redaction_study.py: docs/decisions.md, "Finished studies").
# YuNet (issue 18): face-free coffee scores 0.35 and chelsea 0.25 at their own size, faces blurred with
# sigma 6 still 0.64-0.90, so 0.45 (res10's 0.2 boxed coffee with YuNet).
REDACT_MIN_CONFIDENCE = 0.45
# Fraction of the box's width (height) added on the left and right (top and bottom):
# res10 boxes run brow to chin and cheek to cheek, and hair and ears identify people too.
MARGIN = 0.25
# Blocks across a region's longer side: the face inside it spans about four. With 8 the
# multi-scale detector still saw a face (0.21) in one pixelated 90 px head; with 6, none.
BLOCKS = 6


def grow(box: dict, size: tuple[int, int], margin: float = MARGIN) -> dict:
    """`box` grown by `margin` of its size on every side, clipped to the image (width, height)."""
    width, height = size
    dx, dy = math.ceil(box["width"] * margin), math.ceil(box["height"] * margin)
    x1, y1 = max(box["x"] - dx, 0), max(box["y"] - dy, 0)
    x2, y2 = min(box["x"] + box["width"] + dx, width), min(box["y"] + box["height"] + dy, height)
    return {"x": x1, "y": y1, "width": x2 - x1, "height": y2 - y1}


def redaction_regions(image: np.ndarray, models: Models, faces: list[Face], options: Options) -> list[dict]:
    """Regions to hide: the analysed faces and every detection at the redaction threshold, grown.

    `faces` are the analysis's (all of them, analysed or not), in `image`'s pixels; the
    request's threshold is used instead when it is lower than REDACT_MIN_CONFIDENCE, and
    the request's detection passes (`detail`) run again at the lower threshold.
    """
    height, width = image.shape[:2]
    threshold = min(options.min_confidence, REDACT_MIN_CONFIDENCE)
    found = detect_faces(image, models, threshold, options.detail, options.detect_max_side)
    boxes = [face.box for face in faces + found]
    regions = {tuple(grow(box, (width, height)).values()) for box in boxes}
    return [dict(zip(("x", "y", "width", "height"), region)) for region in sorted(regions)]


def pixelate(image: np.ndarray, regions: list[dict], blocks: int = BLOCKS) -> np.ndarray:
    """A copy of `image` with each region replaced by `blocks` flat squares across its longer side.

    Each square is the mean of the pixels under it (INTER_AREA), so nothing finer than a
    square survives; pixels outside the regions are untouched.
    """
    out = image.copy()
    for r in regions:
        if r["width"] < 1 or r["height"] < 1:
            continue
        patch = out[r["y"]:r["y"] + r["height"], r["x"]:r["x"] + r["width"]]
        side = max(math.ceil(max(r["width"], r["height"]) / blocks), 1)
        grid = (max(round(r["width"] / side), 1), max(round(r["height"] / side), 1))
        small = cv2.resize(patch, grid, interpolation=cv2.INTER_AREA)
        patch[:] = cv2.resize(small, (r["width"], r["height"]), interpolation=cv2.INTER_NEAREST)
    return out
