"""Draw a box per face, and its label beside it -- or, where labels can't all fit, a number keyed to a legend.

Where every text goes is `handler.label_layout.plan`, a pure function (its rules in that module); this
module only paints the plan: the boxes in their gender's colour, the texts on filled rectangles, leader
lines to numbers placed away from their face, and the legend band's swatches.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from handler.face import Face
from handler.label_layout import plan
from handler.label_text import FONT, Rect, TextBox, box_stroke
from handler.readout import UNCLEAR_LABEL

_COLOURS = {  # BGR
    "male": (235, 140, 30),
    "female": (160, 60, 230),
    "unknown": (150, 150, 150),
    "unclear": (0, 165, 255),
}
_LEGEND_INK = (30, 30, 30)
_LEGEND_PAPER = (255, 255, 255)


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
    cv2.putText(out, text.text, (text.x + text.indent + text.pad, text.y + text.pad + text.text_height), FONT,
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
