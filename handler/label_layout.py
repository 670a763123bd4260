"""Where each face's text goes: its label beside it -- or, where labels can't all fit, a number keyed to a legend.

The layout is a pure function, `plan(boxes, labels, size)`, of the face boxes, their labels and the
image size; `handler.annotate` only paints what it returns. Its rules, which tests/unit/test_annotate.py checks
on the drawn rectangles:
- no text rectangle overlaps another one, or any face box except its own box's top quarter (above the
  eyes, where the seed put the label of a face that fills the photo), and all lie inside the canvas;
- labels and the legend are never smaller than `min_text_height` (legible at 100 % and when the
  picture is shown at phone width); a face's number starts at that size and shrinks, only where its
  face is crowded, down to `min_number_height` (legible at 100 %: such crowded faces need zooming on a
  phone anyway);
- labels go beside their face (above, below, left, right, or inside its top quarter), shrinking from the
  seed's size down to that minimum; if any label still has no room, every face gets a number instead,
  and a legend band below the photo lists "label: numbers" (one line per distinct label);
- a face beyond the face limit (its label None) gets a numbered box and no text of its own.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from handler.label_text import FONT_PX, Rect, TextBox, box_stroke, measure, min_number_height, min_text_height
from handler.legend_layout import legend_band, legend_entries

# The eyes of a detector box sit at ~30-50% of its height: a label drawn inside
# the box must stay above that.
_INSIDE_MAX_FRACTION = 0.25


def _number_heights(width: int) -> list[int]:
    """Number heights to try beside a face: the legibility floor, shrinking to the crowded floor."""
    heights, floor = [min_text_height(width)], min_number_height(width)
    while heights[-1] > floor:
        heights.append(max(floor, int(heights[-1] * 0.8)))
    return heights


@dataclass(frozen=True)
class Plan:
    """What `annotate` draws: the canvas size, the photo's height in it, and every text box."""

    width: int
    height: int  # the photo's height plus the legend band, if any
    photo_height: int
    numbered: bool  # True: faces carry numbers and the legend carries the labels
    texts: tuple[TextBox, ...]  # per face (at most one each), then the legend lines
    min_text_height: int

    def for_face(self, index: int) -> TextBox | None:
        return next((t for t in self.texts if t.face == index), None)


def _free(candidates: np.ndarray, obstacles: np.ndarray) -> np.ndarray:
    """For (K, 4) candidate rects x, y, w, h: True where one overlaps none of the (M, 4) obstacles."""
    if len(obstacles) == 0:
        return np.ones(len(candidates), bool)
    c, o = candidates[:, None, :], obstacles[None, :, :]
    hit = ((c[..., 0] < o[..., 0] + o[..., 2]) & (o[..., 0] < c[..., 0] + c[..., 2])
           & (c[..., 1] < o[..., 1] + o[..., 3]) & (o[..., 1] < c[..., 1] + c[..., 3]))
    return ~hit.any(axis=1)


def _beside(box: Rect, w: int, h: int, size: tuple[int, int]) -> list[tuple[int, int, str]]:
    """Candidate corners for a w x h text beside `box`, best first; None-free, clamped along the edge."""
    bx, by, bw, bh = box
    width, height = size
    out = []
    for place, y in (("above", by - h), ("below", by + bh)):
        for x in (bx, bx + bw - w, bx + (bw - w) // 2):
            out.append((min(max(x, 0), width - w), y, place))
    if h <= bh * _INSIDE_MAX_FRACTION and w <= bw:
        out.append((bx, by, "inside"))
    for place, x in (("left", bx - w), ("right", bx + bw)):
        for y in (by, by + bh - h):
            out.append((x, min(max(y, 0), height - h), place))
    return [(x, y, p) for x, y, p in out if 0 <= x <= width - w and 0 <= y <= height - h]


class _Spots:
    """Free w x h spots on a grid over the photo, for the numbers that find no room beside their face."""

    def __init__(self, size: tuple[int, int], w: int, h: int, obstacles: np.ndarray) -> None:
        width, height = size
        step = max(2, h // 2)
        gx, gy = np.meshgrid(np.arange(0, width - w + 1, step), np.arange(0, height - h + 1, step))
        self.cand = np.stack([gx.ravel(), gy.ravel(), np.full(gx.size, w), np.full(gx.size, h)], axis=1)
        self.free = _free(self.cand, obstacles) if len(self.cand) else np.zeros(0, bool)

    def occupy(self, rect: Rect) -> None:
        if len(self.cand):
            self.free &= _free(self.cand, np.array([rect], np.int64))

    def nearest(self, box: Rect) -> tuple[int, int] | None:
        """The free spot whose centre is nearest the box's centre."""
        index = np.flatnonzero(self.free)
        if len(index) == 0:
            return None
        c = self.cand[index]
        bx, by, bw, bh = box
        dist = np.hypot(c[:, 0] + c[:, 2] / 2 - (bx + bw / 2), c[:, 1] + c[:, 3] / 2 - (by + bh / 2))
        x, y = c[int(np.argmin(dist)), :2]
        return int(x), int(y)


def _place(box: Rect, own: int, w: int, h: int, size: tuple[int, int], boxes: np.ndarray,
           texts: list[Rect], gap: int) -> tuple[int, int, str] | None:
    """The first free corner beside the box (other boxes kept `gap` px clear, for their strokes)."""
    corners = _beside(box, w, h, size)
    if not corners:
        return None
    others = np.delete(boxes, own, axis=0)
    if len(others):
        others = others + np.array([-gap, -gap, 2 * gap, 2 * gap])
    placed = np.array(texts, np.int64).reshape(-1, 4)
    cand = np.array([(x, y, w, h) for x, y, _ in corners], np.int64)
    ok = _free(cand, np.concatenate([others, placed]))
    inside = np.array([p == "inside" for _, _, p in corners])
    ok &= inside | _free(cand, boxes[own:own + 1])  # only "inside" may touch its own box
    return corners[int(np.argmax(ok))] if ok.any() else None


def _number(i: int, text: str, rects: list[Rect], size: tuple[int, int], boxes: np.ndarray,
            placed: list[TextBox], spots: _Spots, gap: int) -> TextBox | None:
    """Face i's number beside it, shrinking where crowded; else at the nearest free spot (drawn with a
    leader line); else None."""
    widest = "0" * len(text)  # "0" is as wide as any digit: numbers of one length share a width
    for th in _number_heights(size[0]):
        w, h = measure(widest, th)[:2]
        w = max(w, h)  # a square at least: one-digit numbers read better with some room
        corner = _place(rects[i], i, w, h, size, boxes, [t.rect for t in placed], gap)
        if corner is not None:
            return _text_box(text, th, corner, i, width=w)
    spot = spots.nearest(rects[i])
    if spot is None:
        return None
    return _text_box(text, min_number_height(size[0]), (*spot, "away"), i, width=int(spots.cand[0, 2]))


def _number_spots(numbers: Sequence[int], size: tuple[int, int], boxes: np.ndarray, gap: int) -> _Spots:
    """Spots at the crowded floor, as wide as the widest number, so every number fits any of them."""
    th = min_number_height(size[0])
    w, h = measure("0" * len(str(max(numbers, default=0))), th)[:2]
    w = max(w, h)  # a square at least: one-digit numbers read better with some room
    grown = boxes + np.array([-gap, -gap, 2 * gap, 2 * gap]) if len(boxes) else boxes
    return _Spots(size, w, h, grown)  # none at all on a photo narrower or lower than a number


def _text_box(text: str, text_height: int, corner: tuple[int, int, str], face: int | None,
              width: int | None = None) -> TextBox:
    w, h, scale, thickness, pad, th = measure(text, text_height)
    x, y, place = corner
    if width is not None:  # a number in a fixed-width rectangle: centre it
        pad, w = pad + (width - w) // 2, width
    return TextBox(x, y, w, h, text, scale, thickness, pad, th, face, place)


def _label_heights(size: tuple[int, int]) -> list[int]:
    """Text heights to try for labels: the seed's size for this photo, shrinking to the legibility floor."""
    width, height = size
    floor = min_text_height(width)
    top = max(floor, round(FONT_PX * max(0.4, min(width, height) / 900)))
    heights = [top]
    while heights[-1] > floor:
        heights.append(max(floor, int(heights[-1] * 0.85)))
    return heights


def _try_labels(rects: list[Rect], labels: Sequence[str | None], numbers: Sequence[int],
                size: tuple[int, int], gap: int) -> list[TextBox] | None:
    """Every label beside its face at a legible size, or None; label-less faces get their number."""
    boxes = np.array(rects, np.int64).reshape(-1, 4)
    heights = _label_heights(size)
    placed: list[TextBox] = []
    unlabelled = [i for i, label in enumerate(labels) if label is None]
    for i, label in enumerate(labels):
        if label is None:
            continue
        for th in heights:
            w, h = measure(label, th)[:2]
            corner = _place(rects[i], i, w, h, size, boxes, [t.rect for t in placed], gap)
            if corner is not None:
                placed.append(_text_box(label, th, corner, i))
                break
        else:
            return None
    if unlabelled:  # numbers after every label is placed, so they take what room is left
        spots = _number_spots([numbers[i] for i in unlabelled], size, boxes, gap)
        for t in placed:
            spots.occupy(t.rect)
        for i in unlabelled:
            tag = _number(i, str(numbers[i]), rects, size, boxes, placed, spots, gap)
            if tag is not None:
                placed.append(tag)
                spots.occupy(tag.rect)
    return placed


def _number_faces(rects: list[Rect], numbers: Sequence[int], size: tuple[int, int], gap: int) -> list[TextBox]:
    """A number beside each face (or as near as there is room, with a leader line)."""
    boxes = np.array(rects, np.int64).reshape(-1, 4)
    spots = _number_spots(numbers, size, boxes, gap)
    placed: list[TextBox] = []
    for i in range(len(rects)):
        tag = _number(i, str(numbers[i]), rects, size, boxes, placed, spots, gap)
        if tag is not None:
            placed.append(tag)
            spots.occupy(tag.rect)
    return placed


def plan(boxes: Sequence[dict], labels: Sequence[str | None], size: tuple[int, int],
         numbers: Sequence[int] | None = None) -> Plan:
    """Where every text goes for faces `boxes` (x, y, width, height, inside the photo) with `labels`
    (None: a face beyond the face limit) on a photo `size` = (width, height); `numbers` default 1..n."""
    width, height = size
    numbers = list(numbers) if numbers is not None else list(range(1, len(boxes) + 1))
    rects = [(int(b["x"]), int(b["y"]), int(b["width"]), int(b["height"])) for b in boxes]
    gap = box_stroke(size)  # texts keep a stroke's width clear of other faces' boxes
    texts = _try_labels(rects, labels, numbers, size, gap)
    numbered = texts is None
    if texts is None:
        texts = _number_faces(rects, numbers, size, gap)
    entries = legend_entries(labels, numbers, numbered)
    canvas_w, canvas_h = width, height
    if entries:
        legend, band, canvas_w = legend_band(entries, width, height)
        texts = texts + legend
        canvas_h = height + band
    return Plan(canvas_w, canvas_h, height, numbered, tuple(texts), min_text_height(width))
