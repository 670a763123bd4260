"""The legend band below a crowded photo: "label: numbers" per distinct label, packed into up to 4 columns."""

from __future__ import annotations

import math
from collections.abc import Sequence

from handler.label_text import TextBox, measure, min_text_height

NOT_ANALYZED_LEGEND = "Not analysed (face limit)"


def legend_entries(labels: Sequence[str | None], numbers: Sequence[int], numbered: bool) -> list[tuple[str, str]]:
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
        if lines and measure(trial, th)[0] <= max_width:
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


def legend_band(entries: list[tuple[str, str]], width: int, top: int) -> tuple[list[TextBox], int, int]:
    """Legend lines in a band starting at `top`: (text boxes, band height, canvas width).

    Each line's rectangle holds a colour swatch (on an entry's first line) and its text after it. The
    entries run down up to 4 columns, whichever makes the band shortest, with each label kept on one
    line (only the face numbers wrap), so a long legend stays short at the same text size."""
    th = min_text_height(width)
    margin = th
    width = max(width, 30 * th)  # a sliver of a photo gets a legend wide enough to read (the canvas widens)
    line_h = measure("Ag", th)[1]
    indent = line_h + margin // 2
    best: tuple[int, int, list[list[tuple[str, str, bool]]]] | None = None
    for columns in range(1, 5):
        column = (width - 2 * margin - (columns - 1) * 2 * margin) // columns
        budget = column - indent
        if columns > 1 and any(measure(text.rsplit(": ", 1)[0] + ":", th)[0] > budget for _, text in entries):
            break
        packed = _pack([(key, _wrap(text, th, budget)) for key, text in entries], columns)
        if packed is not None and (best is None or max(map(len, packed)) < max(map(len, best[2]))):
            best = (columns, column, packed)
    assert best is not None  # one column always packs
    _, column, packed = best
    boxes = []
    for c, lines in enumerate(packed):
        for r, (text, key, first) in enumerate(lines):
            w, h, scale, thickness, pad, t = measure(text, th)
            boxes.append(TextBox(margin + c * (column + 2 * margin), top + margin + r * line_h, indent + w, h, text,
                                 scale, thickness, pad, t, None, "legend", key, indent, first))
    y = top + margin + max(map(len, packed)) * line_h
    canvas_w = max(width, max(b.x + b.width for b in boxes) + margin)
    return boxes, y + margin - top, canvas_w
