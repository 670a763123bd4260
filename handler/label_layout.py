"""Draw a box per face, and its label beside it -- or, where labels can't all fit, a number keyed to a legend.

The layout is a pure function, `plan(boxes, labels, size)`, of the face boxes, their labels and the
image size; `annotate` only paints what it returns. Its rules, which tests/unit/test_annotate.py checks
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

import math
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from handler.face import Face
from handler.readout import UNCLEAR_LABEL

_FONT = cv2.FONT_HERSHEY_SIMPLEX
_FONT_PX = 22  # cv2.getTextSize height of any text at scale 1.0 in this font (cap height of "A", "1")
_COLOURS = {  # BGR
    "male": (235, 140, 30),
    "female": (160, 60, 230),
    "unknown": (150, 150, 150),
    "unclear": (0, 165, 255),
}
_LEGEND_INK = (30, 30, 30)
_LEGEND_PAPER = (255, 255, 255)
# The eyes of a detector box sit at ~30-50% of its height: a label drawn inside
# the box must stay above that.
_INSIDE_MAX_FRACTION = 0.25
# Legibility floor for any text: at least 10 px high at 100 %, and at least 1/64 of the picture's width,
# so that shown at a phone's 390 CSS px width it is still >= 6 CSS px high (the cap height of ~9 px type).
MIN_TEXT_PX = 10
MIN_TEXT_WIDTH_FRACTION = 1 / 64
# A crowded face's number may shrink to 1/200 of the width (10 px on the 2048 px annotated copy).
MIN_NUMBER_WIDTH_FRACTION = 1 / 200
NOT_ANALYZED_LEGEND = "Not analysed (face limit)"

Rect = tuple[int, int, int, int]  # x, y, width, height


def min_text_height(width: int) -> int:
    """The smallest text height (px, font cap height) drawn on a picture `width` px wide."""
    return max(MIN_TEXT_PX, math.ceil(width * MIN_TEXT_WIDTH_FRACTION))


def min_number_height(width: int) -> int:
    """The smallest height of a face's number, where its face is crowded."""
    return max(MIN_TEXT_PX, math.ceil(width * MIN_NUMBER_WIDTH_FRACTION))


def _number_heights(width: int) -> list[int]:
    """Number heights to try beside a face: the legibility floor, shrinking to the crowded floor."""
    heights, floor = [min_text_height(width)], min_number_height(width)
    while heights[-1] > floor:
        heights.append(max(floor, int(heights[-1] * 0.8)))
    return heights


@dataclass(frozen=True)
class TextBox:
    """One text on a filled rectangle: a face's label or number, or a legend line."""

    x: int
    y: int
    width: int
    height: int
    text: str
    scale: float
    thickness: int
    pad: int
    text_height: int
    face: int | None  # index of the face it names; None for a legend line
    place: str  # above, below, left, right, inside, away (joined by a leader line), legend
    key: str = ""  # a legend line: the label whose colour its swatch takes
    indent: int = 0  # a legend line: where its text starts (a swatch `height` px square sits before it)
    swatch: bool = False  # the first line of a legend entry carries the swatch

    @property
    def rect(self) -> Rect:
        return self.x, self.y, self.width, self.height


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


def box_stroke(size: tuple[int, int]) -> int:
    """The face boxes' line width: the seed's, growing with the photo."""
    return max(1, round(max(0.4, min(size) / 900) * 1.6))


def _style(text_height: int) -> tuple[float, int, int]:
    """(font scale, stroke thickness, padding) for text `text_height` px high."""
    scale = text_height / _FONT_PX
    return scale, max(1, round(scale * 1.6)), max(2, round(scale * 4))


def _measure(text: str, text_height: int) -> tuple[int, int, float, int, int, int]:
    """(rectangle width, rectangle height, scale, thickness, pad, drawn text height)."""
    scale, thickness, pad = _style(text_height)
    (tw, th), base = cv2.getTextSize(text, _FONT, scale, thickness)
    return tw + 2 * pad, th + base + 2 * pad, scale, thickness, pad, th


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
        w, h = _measure(widest, th)[:2]
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
    w, h = _measure("0" * len(str(max(numbers, default=0))), th)[:2]
    w = max(w, h)  # a square at least: one-digit numbers read better with some room
    grown = boxes + np.array([-gap, -gap, 2 * gap, 2 * gap]) if len(boxes) else boxes
    return _Spots(size, w, h, grown)  # none at all on a photo narrower or lower than a number


def _text_box(text: str, text_height: int, corner: tuple[int, int, str], face: int | None,
              width: int | None = None) -> TextBox:
    w, h, scale, thickness, pad, th = _measure(text, text_height)
    x, y, place = corner
    if width is not None:  # a number in a fixed-width rectangle: centre it
        pad, w = pad + (width - w) // 2, width
    return TextBox(x, y, w, h, text, scale, thickness, pad, th, face, place)


def _label_heights(size: tuple[int, int]) -> list[int]:
    """Text heights to try for labels: the seed's size for this photo, shrinking to the legibility floor."""
    width, height = size
    floor = min_text_height(width)
    top = max(floor, round(_FONT_PX * max(0.4, min(width, height) / 900)))
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
            w, h = _measure(label, th)[:2]
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


def _legend_entries(labels: Sequence[str | None], numbers: Sequence[int], numbered: bool) -> list[tuple[str, str]]:
    """(label, "label: 3, 7, 12") per distinct label in order of first face; the face-limit line last."""
    groups: dict[str, list[int]] = {}
    if numbered:
        for label, number in zip(labels, numbers, strict=True):
            if label is not None:
                groups.setdefault(label, []).append(number)
    entries = [(label, f"{label}: {', '.join(map(str, nums))}") for label, nums in groups.items()]
    beyond = [n for label, n in zip(labels, numbers, strict=True) if label is None]
    if beyond:
        span = str(beyond[0]) if len(beyond) == 1 else f"{min(beyond)} to {max(beyond)}"
        entries.append(("", f"{NOT_ANALYZED_LEGEND}: {span}"))
    return entries


def _wrap(text: str, th: int, max_width: int) -> list[str]:
    """Split at spaces so each line's rectangle is at most `max_width` wide (a single word may exceed it)."""
    lines: list[str] = []
    for word in text.split(" "):
        trial = f"{lines[-1]} {word}" if lines else word
        if lines and _measure(trial, th)[0] <= max_width:
            lines[-1] = trial
        else:
            lines.append(word)
    return lines


def _pack(wrapped: list[tuple[str, list[str]]], columns: int) -> list[list[tuple[str, str, bool]]] | None:
    """Whole entries into at most `columns` columns of about equal length; None if they don't fit."""
    total = sum(len(lines) for _, lines in wrapped)
    for rows in range(math.ceil(total / columns), total + 1):
        packed: list[list[tuple[str, str, bool]]] = [[]]
        for key, lines in wrapped:
            if packed[-1] and len(packed[-1]) + len(lines) > rows:
                packed.append([])
            packed[-1].extend((line, key, n == 0) for n, line in enumerate(lines))
        if len(packed) <= columns:
            return packed
    return None


def _legend(entries: list[tuple[str, str]], width: int, top: int) -> tuple[list[TextBox], int, int]:
    """Legend lines in a band starting at `top`: (text boxes, band height, canvas width).

    Each line's rectangle holds a colour swatch (on an entry's first line) and its text after it. The
    entries run down up to 4 columns, whichever makes the band shortest, with each label kept on one
    line (only the face numbers wrap), so a long legend stays short at the same text size."""
    th = min_text_height(width)
    margin = th
    width = max(width, 30 * th)  # a sliver of a photo gets a legend wide enough to read (the canvas widens)
    line_h = _measure("Ag", th)[1]
    indent = line_h + margin // 2
    best: tuple[int, int, list[list[tuple[str, str, bool]]]] | None = None
    for columns in range(1, 5):
        column = (width - 2 * margin - (columns - 1) * 2 * margin) // columns
        budget = column - indent
        if columns > 1 and any(_measure(text.rsplit(": ", 1)[0] + ":", th)[0] > budget for _, text in entries):
            break
        packed = _pack([(key, _wrap(text, th, budget)) for key, text in entries], columns)
        if packed is not None and (best is None or max(map(len, packed)) < max(map(len, best[2]))):
            best = (columns, column, packed)
    assert best is not None  # one column always packs
    _, column, packed = best
    boxes = []
    for c, lines in enumerate(packed):
        for r, (text, key, first) in enumerate(lines):
            w, h, scale, thickness, pad, t = _measure(text, th)
            boxes.append(TextBox(margin + c * (column + 2 * margin), top + margin + r * line_h, indent + w, h, text,
                                 scale, thickness, pad, t, None, "legend", key, indent, first))
    y = top + margin + max(map(len, packed)) * line_h
    canvas_w = max(width, max(b.x + b.width for b in boxes) + margin)
    return boxes, y + margin - top, canvas_w


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
    entries = _legend_entries(labels, numbers, numbered)
    canvas_w, canvas_h = width, height
    if entries:
        legend, band, canvas_w = _legend(entries, width, height)
        texts = texts + legend
        canvas_h = height + band
    return Plan(canvas_w, canvas_h, height, numbered, tuple(texts), min_text_height(width))


def _colour(face: Face) -> tuple[int, int, int]:
    if not face.analyzed or face.label == UNCLEAR_LABEL:
        return _COLOURS["unclear"]
    return _COLOURS[face.gender["value"]]


def _leader(box: Rect, text: TextBox) -> tuple[tuple[int, int], tuple[int, int]]:
    """The segment joining a text placed away from its face: nearest points of the two rectangles."""
    bx, by, bw, bh = box
    cx = min(max(text.x + text.width // 2, bx), bx + bw - 1)
    cy = min(max(text.y + text.height // 2, by), by + bh - 1)
    tx = min(max(cx, text.x), text.x + text.width - 1)
    ty = min(max(cy, text.y), text.y + text.height - 1)
    return (tx, ty), (cx, cy)


def _put(out: np.ndarray, text: TextBox, fill: tuple[int, int, int], ink: tuple[int, int, int]) -> None:
    cv2.rectangle(out, (text.x, text.y), (text.x + text.width - 1, text.y + text.height - 1), fill, cv2.FILLED)
    cv2.putText(out, text.text, (text.x + text.indent + text.pad, text.y + text.pad + text.text_height), _FONT,
                text.scale, ink, text.thickness, cv2.LINE_AA)


def annotate(image: np.ndarray, faces: Sequence[Face]) -> np.ndarray:
    """A copy of `image` with each face's box and its label or number drawn; a legend band below when used.

    `faces` are the analysis's records with boxes in `image`'s pixels.
    """
    height, width = image.shape[:2]
    labels = [f.label if f.analyzed else None for f in faces]
    numbers = [f.rank or i + 1 for i, f in enumerate(faces)]
    layout = plan([f.box for f in faces], labels, (width, height), numbers)
    out = np.full((layout.height, layout.width, 3), _LEGEND_PAPER, np.uint8)
    out[:height, :width] = image
    stroke = box_stroke((width, height))
    colours = [_colour(f) for f in faces]
    for face, colour in zip(faces, colours, strict=True):
        b = face.box
        cv2.rectangle(out, (b["x"], b["y"]), (b["x"] + b["width"] - 1, b["y"] + b["height"] - 1), colour, stroke)
    key_colour = {label: colour for label, colour in zip(labels, colours, strict=True) if label is not None}
    key_colour[""] = _COLOURS["unclear"]
    for text in layout.texts:
        if text.face is not None:
            colour = colours[text.face]
            if text.place == "away":
                b = faces[text.face].box
                start, end = _leader((b["x"], b["y"], b["width"], b["height"]), text)
                cv2.line(out, start, end, colour, max(1, stroke // 2), cv2.LINE_AA)
            _put(out, text, colour, (255, 255, 255))
        else:  # a legend line: a swatch in the label's colour, then dark text on the white band
            _put(out, text, _LEGEND_PAPER, _LEGEND_INK)
            if text.swatch:
                side = text.height - 4
                cv2.rectangle(out, (text.x, text.y + 2), (text.x + side - 1, text.y + 2 + side - 1),
                              key_colour[text.key], cv2.FILLED)
    return out
