"""Faces of any size in one call: a cheap whole-photo pass, one finer pass where needed, one merge.

YuNet (on cv2.FaceDetectorYN) runs at the input's own size and finds faces from
about 12 px of its input up to the whole frame; its cost grows with the pixels
it sees (about 5x the 640x480 pass for a 2048x1536 one). So the detail level
picks the working resolution, not a pyramid:

- the coarse pass: the photo with its long side at most COARSE_SIDE (640 px);
- `"fast"`: the coarse pass only;
- `"auto"` (the default): the coarse pass, then, unless it found a dominant face
  (a portrait or selfie) or the photo is about the coarse pass's size, one finer
  pass: for a photo up to twice the coarse side (~1 MP) at its own size, and only
  when the coarse pass found a face near its floor (under SMALL_FACE px there: a
  group whose smaller faces may hide below it), so a face-free or few-face 1 MP
  photo costs one 640 px pass; for a bigger photo always, at AUTO_SCALE (half) of
  its size, at most `fine_side`;
- `"full"`: the coarse pass, then one pass at the photo's own size (at most
  `fine_side`, DETECT_MAX_SIDE).

A finer pass on a reduced photo (12 MP seen at 2000 px) also keeps its weak small
boxes and looks at each again on a full-resolution crop (`finer_pass`, `verified`).
A finer pass bigger than BAND_PIXELS runs in horizontal bands overlapping by
BAND_OVERLAP px (cv2.dnn's activations take ~85 MB per megapixel of input);
a band drops boxes touching an inner edge (whole in the neighbouring band) and
faces taller than the overlap (the coarse pass's). Non-maximum suppression then
merges all passes.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import NamedTuple

import cv2
import numpy as np

DETAILS = ("auto", "full", "fast")
COARSE_SIDE = 640
# "auto"'s finer pass: half the photo's size (at most fine_side): 12 MP is seen at 2000x1500.
AUTO_SCALE = 0.5
# "auto", photos up to 2x COARSE_SIDE: a coarse face under this many (coarse) px calls for the finer pass.
SMALL_FACE = 32
# A finer pass is skipped unless it is at least this much bigger than the coarse one.
_FINER = 1.25
BAND_PIXELS = 2_200_000
BAND_OVERLAP = 256
# "auto": a coarse face at least this fraction of the photo's short side makes it a portrait.
DOMINANT_FRACTION = 0.2
_EDGE_MARGIN = 4
# YuNet scores faces near its floor lower (60 px squares in 12 MP, seen at 2000 px: 74.5 % found at 0.75,
# 84.5 % at 0.6): in the finer pass, boxes under TINY px of its input pass at min_confidence - TINY_RELIEF.
# (Not in the 640 px pass: there it boxed a motorcycle's headlight in a 12 MP photo at 0.63.)
TINY = 48
TINY_RELIEF = 0.15
# A finer pass on a photo reduced to at most VERIFY_BELOW_SCALE of its size keeps its small boxes from
# VERIFY_FLOOR, up to MAX_VERIFIED of them, and looks at each again on a full-resolution crop (`verified`):
# 60 px faces in 12 MP, seen at 2000 px, 84.5 -> 98.5 % found (issue 24; docs/faces-of-every-size.md).
VERIFY_BELOW_SCALE = 0.75
VERIFY_FLOOR = 0.1
MAX_VERIFIED = 256
_VERIFY_OVERLAP = 0.3
_NMS_IOU = 0.35
# A box mostly inside a stronger one is the same face seen at another scale.
_CONTAINED = 0.75

Landmarks = tuple[tuple[float, float], ...]


class Detection(NamedTuple):
    """One face in image pixels (box unclipped).

    `landmarks`: YuNet's 5 points in image pixels, in this order: right eye, left eye
    (the subject's; i.e. the eye on the image's left first), nose tip, right and left
    mouth corner (image-left first). None when the detector gives none.
    """

    x1: float
    y1: float
    x2: float
    y2: float
    confidence: float
    landmarks: Landmarks | None = None


# Runs the net on one HxWx3 BGR input at that input's size; returns Detections in that input's pixels.
Forward = Callable[[np.ndarray, float], list[Detection]]


def _scaled(det: Detection, scale: float, dx: float = 0.0, dy: float = 0.0) -> Detection:
    """A detection from a (resized, offset) input back in the photo's pixels.

    Pixel centres map as (x + 0.5) / scale - 0.5: the resized image's pixel i covers the
    photo's [i / scale, (i + 1) / scale).
    """
    def back(v: float, d: float) -> float:
        return (v + d + 0.5) / scale - 0.5

    lm = None if det.landmarks is None else tuple((back(x, dx), back(y, dy)) for x, y in det.landmarks)
    return Detection(back(det.x1, dx), back(det.y1, dy), back(det.x2, dx), back(det.y2, dy), det.confidence, lm)


def _resized(image: np.ndarray, side: int) -> tuple[np.ndarray, float]:
    height, width = image.shape[:2]
    scale = min(1.0, side / max(width, height))
    if scale >= 1.0:
        return image, 1.0
    w, h = max(1, round(width * scale)), max(1, round(height * scale))
    # INTER_AREA: shrinking a 12 MP photo with bilinear aliases and hides faces.
    return cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA), scale


def band_spans(width: int, height: int) -> list[tuple[int, int]]:
    """(start row, rows) of the fewest equal bands of at most BAND_PIXELS covering the image, overlapping."""
    rows = max(BAND_OVERLAP * 2, BAND_PIXELS // max(width, 1))
    if height <= rows:
        return [(0, height)]
    n = math.ceil((height - BAND_OVERLAP) / (rows - BAND_OVERLAP))
    size = math.ceil((height + (n - 1) * BAND_OVERLAP) / n)
    return [(round(i * (height - size) / (n - 1)), size) for i in range(n)]


def run_pass(image: np.ndarray, side: int, forward: Forward, min_confidence: float,
             relief: float = 0.0) -> list[Detection]:
    """Every face YuNet finds with the photo's long side at `side` (bands if large), in the photo's pixels;
    boxes under TINY px of the pass's input pass at `min_confidence - relief`."""
    resized, scale = _resized(image, side)
    h, w = resized.shape[:2]
    spans = band_spans(w, h)
    out = []
    for y0, bh in spans:
        for det in forward(resized[y0:y0 + bh], max(0.05, min_confidence - relief)):
            if det.confidence < min_confidence and det.y2 - det.y1 >= TINY:
                continue
            if len(spans) > 1:
                if det.y2 - det.y1 > BAND_OVERLAP:
                    continue  # may be cut by the band: the coarse pass's
                if (y0 > 0 and det.y1 < _EDGE_MARGIN) or (y0 + bh < h and det.y2 > bh - _EDGE_MARGIN):
                    continue  # cut by an inner edge: whole in the neighbouring band
            out.append(_scaled(det, scale, 0.0, y0))
    return out


def merge(detections: list[Detection]) -> list[Detection]:
    """Non-maximum suppression across passes: overlapping (IoU) or nested boxes keep the most confident."""
    kept: list[Detection] = []
    for det in sorted(detections, key=lambda d: d[4], reverse=True):
        x1, y1, x2, y2 = det[:4]
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


def finer_side(width: int, height: int, detail: str, fine_side: int) -> int | None:
    """The long side of the finer pass for a photo and detail, or None when the coarse pass is enough."""
    long_side = max(width, height)
    if detail == "fast":
        return None
    side = min(long_side, fine_side)
    if detail == "auto" and long_side > 2 * COARSE_SIDE:
        side = min(side, round(long_side * AUTO_SCALE))
    return side if side >= min(long_side, COARSE_SIDE) * _FINER else None


def detect_at_detail(image: np.ndarray, forward: Forward, min_confidence: float, detail: str = "auto",
                     fine_side: int = 2048) -> list[Detection]:
    """Every face in a BGR image as Detections in its pixels, most confident first."""
    height, width = image.shape[:2]
    found = run_pass(image, COARSE_SIDE, forward, min_confidence)
    side = finer_side(width, height, detail, fine_side)
    if side is not None and detail == "auto":
        if any(is_dominant(d, width, height) for d in found):
            side = None
        elif max(width, height) <= 2 * COARSE_SIDE:
            coarse_scale = min(1.0, COARSE_SIDE / max(width, height))
            if not any((d.y2 - d.y1) * coarse_scale < SMALL_FACE for d in found):
                side = None
    if side is None:
        return merge(found)
    return merge(found + finer_pass(image, side, forward, min_confidence, found))


def _overlaps(det: Detection, others: Sequence[Detection]) -> bool:
    """True when `det` shares more than _VERIFY_OVERLAP of the smaller box's area with any of `others`."""
    for o in others:
        iw, ih = min(det.x2, o.x2) - max(det.x1, o.x1), min(det.y2, o.y2) - max(det.y1, o.y1)
        if iw > 0 and ih > 0 and iw * ih > _VERIFY_OVERLAP * min((det.x2 - det.x1) * (det.y2 - det.y1),
                                                               (o.x2 - o.x1) * (o.y2 - o.y1)):
            return True
    return False


def finer_pass(image: np.ndarray, side: int, forward: Forward, min_confidence: float,
               known: Sequence[Detection] = ()) -> list[Detection]:
    """The finer pass: boxes at min_confidence (under TINY px of its input at min_confidence - TINY_RELIEF);
    on a reduced photo, its weaker small boxes (from VERIFY_FLOOR) away from the faces already found
    (`known` and its own) are re-checked at full resolution."""
    scale = min(1.0, side / max(image.shape[:2]))
    if scale > VERIFY_BELOW_SCALE:
        return run_pass(image, side, forward, min_confidence, TINY_RELIEF)
    kept, weak = [], []
    for det in run_pass(image, side, forward, min(VERIFY_FLOOR, min_confidence)):
        tiny = (det.y2 - det.y1) * scale < TINY
        if det.confidence >= min_confidence or (tiny and det.confidence >= min_confidence - TINY_RELIEF):
            kept.append(det)
        elif tiny:
            weak.append(det)
    # A weak box beside a face already found is mostly that face, shifted: not a new one.
    weak = [d for d in sorted(weak, key=lambda d: d.confidence, reverse=True) if not _overlaps(d, [*known, *kept])]
    return kept + [d for d in verified(image, weak[:MAX_VERIFIED], forward, min_confidence)
                   if not _overlaps(d, [*known, *kept])]


def verified(image: np.ndarray, weak: list[Detection], forward: Forward, min_confidence: float) -> list[Detection]:
    """Each weak box re-detected on a crop of the photo at its own resolution, twice the box's size:
    the crop's own box (its centre inside the weak box) when it reaches `min_confidence`."""
    height, width = image.shape[:2]
    out = []
    for det in weak:
        side = max(det.x2 - det.x1, det.y2 - det.y1)
        cx, cy = (det.x1 + det.x2) / 2, (det.y1 + det.y2) / 2
        x0, y0 = max(0, int(cx - side)), max(0, int(cy - side))
        x1, y1 = min(width, int(cx + side) + 1), min(height, int(cy + side) + 1)
        hits = [d for d in forward(image[y0:y1, x0:x1], min_confidence)
                if abs((d.x1 + d.x2) / 2 + x0 - cx) < side / 2 and abs((d.y1 + d.y2) / 2 + y0 - cy) < side / 2]
        if hits:
            out.append(_scaled(max(hits, key=lambda d: d.confidence), 1.0, x0, y0))
    return out
