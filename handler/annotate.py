"""Draw a box and a readable label per face on a copy of the image."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from handler.pipeline import UNCLEAR_LABEL

_FONT = cv2.FONT_HERSHEY_SIMPLEX
_COLOURS = {  # BGR
    "male": (235, 140, 30),
    "female": (160, 60, 230),
    "unknown": (150, 150, 150),
    "unclear": (0, 165, 255),
}
# The eyes of a detector box sit at ~30-50% of its height: a label drawn inside
# the box must stay above that.
_INSIDE_MAX_FRACTION = 0.25


def _colour(face: dict) -> tuple[int, int, int]:
    if not face["analyzed"] or face["label"] == UNCLEAR_LABEL:
        return _COLOURS["unclear"]
    return _COLOURS[face["gender"]["value"]]


def _fit_text(text: str, scale: float, thickness: int, max_width: int, max_height: int) -> tuple[float, int, int, int]:
    """Shrink the font until the label fits; return (scale, text width, text height, baseline)."""
    while True:
        (tw, th), base = cv2.getTextSize(text, _FONT, scale, thickness)
        if (tw <= max_width and th + base <= max_height) or scale <= 0.25:
            return scale, tw, th, base
        scale *= 0.85


def label_position(box: dict, size: tuple[int, int], label_h: int, label_w: int) -> tuple[int, int, str]:
    """Top-left corner of the label background: above the box, else below, else inside its top edge."""
    width, height = size
    x = min(max(box["x"], 0), max(width - label_w, 0))
    if box["y"] - label_h >= 0:
        return x, box["y"] - label_h, "above"
    if box["y"] + box["height"] + label_h <= height:
        return x, box["y"] + box["height"], "below"
    return x, box["y"], "inside"


@dataclass(frozen=True)
class LabelLayout:
    """Where and how big one label is drawn."""

    x: int
    y: int
    width: int
    height: int
    place: str
    scale: float
    thickness: int
    pad: int
    text_height: int


def layout_label(text: str, box: dict, size: tuple[int, int]) -> LabelLayout:
    """Fit the label: font scale follows the image size, shrunk until it fits its place."""
    width, height = size
    base_scale = max(0.4, min(width, height) / 900)
    thickness = max(1, round(base_scale * 1.6))
    pad = max(2, round(base_scale * 4))
    room_outside = max(box["y"], height - box["y"] - box["height"])
    inside_room = int(box["height"] * _INSIDE_MAX_FRACTION)
    max_h = max(room_outside, inside_room) - 2 * pad
    scale, tw, th, base = _fit_text(text, base_scale, thickness, width - 2 * pad, max(max_h, 6))
    if th + base + 2 * pad > room_outside:
        # It will go inside the box: keep it in the top quarter, clear of the eyes.
        scale, tw, th, base = _fit_text(text, scale, thickness, width - 2 * pad, max(inside_room - 2 * pad, 6))
    label_w, label_h = min(tw + 2 * pad, width), min(th + base + 2 * pad, height)
    x, y, place = label_position(box, size, label_h, label_w)
    return LabelLayout(x, y, label_w, label_h, place, scale, thickness, pad, th)


def annotate(image: np.ndarray, faces: list[dict]) -> np.ndarray:
    """A copy of `image` with each face's box and label drawn, labels fully inside the image."""
    out = image.copy()
    height, width = out.shape[:2]
    for face in faces:
        box, colour = face["box"], _colour(face)
        layout = layout_label(face["label"], box, (width, height))
        cv2.rectangle(out, (box["x"], box["y"]), (box["x"] + box["width"] - 1, box["y"] + box["height"] - 1),
                      colour, layout.thickness)
        cv2.rectangle(out, (layout.x, layout.y), (layout.x + layout.width - 1, layout.y + layout.height - 1),
                      colour, cv2.FILLED)
        cv2.putText(out, face["label"], (layout.x + layout.pad, layout.y + layout.pad + layout.text_height), _FONT,
                    layout.scale, (255, 255, 255), layout.thickness, cv2.LINE_AA)
    return out
