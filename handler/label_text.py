"""Text metrics for the drawn labels: the font, the legibility floors, and the filled rectangle one text takes."""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2

FONT = cv2.FONT_HERSHEY_SIMPLEX
FONT_PX = 22  # cv2.getTextSize height of any text at scale 1.0 in this font (cap height of "A", "1")
# Legibility floor for any text: at least 10 px high at 100 %, and at least 1/64 of the picture's width,
# so that shown at a phone's 390 CSS px width it is still >= 6 CSS px high (the cap height of ~9 px type).
MIN_TEXT_PX = 10
MIN_TEXT_WIDTH_FRACTION = 1 / 64
# A crowded face's number may shrink to 1/200 of the width (10 px on the 2048 px annotated copy).
MIN_NUMBER_WIDTH_FRACTION = 1 / 200

Rect = tuple[int, int, int, int]  # x, y, width, height


def min_text_height(width: int) -> int:
    """The smallest text height (px, font cap height) drawn on a picture `width` px wide."""
    return max(MIN_TEXT_PX, math.ceil(width * MIN_TEXT_WIDTH_FRACTION))


def min_number_height(width: int) -> int:
    """The smallest height of a face's number, where its face is crowded."""
    return max(MIN_TEXT_PX, math.ceil(width * MIN_NUMBER_WIDTH_FRACTION))


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


def box_stroke(size: tuple[int, int]) -> int:
    """The face boxes' line width: the seed's, growing with the photo."""
    return max(1, round(max(0.4, min(size) / 900) * 1.6))


def style(text_height: int) -> tuple[float, int, int]:
    """(font scale, stroke thickness, padding) for text `text_height` px high."""
    scale = text_height / FONT_PX
    return scale, max(1, round(scale * 1.6)), max(2, round(scale * 4))


def measure(text: str, text_height: int) -> tuple[int, int, float, int, int, int]:
    """(rectangle width, rectangle height, scale, thickness, pad, drawn text height)."""
    scale, thickness, pad = style(text_height)
    (tw, th), base = cv2.getTextSize(text, FONT, scale, thickness)
    return tw + 2 * pad, th + base + 2 * pad, scale, thickness, pad, th
