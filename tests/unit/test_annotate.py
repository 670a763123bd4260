"""Label placement: above, else below, else inside the top edge; always inside the image, never over the eyes."""

from __future__ import annotations

import numpy as np
import pytest

from handler.annotate import annotate, layout_label

LABEL = "Female, (25-32)"


@pytest.mark.parametrize("box, size, place", [
    ({"x": 100, "y": 200, "width": 100, "height": 120}, (640, 480), "above"),
    ({"x": 100, "y": 0, "width": 100, "height": 120}, (640, 480), "below"),
    ({"x": 0, "y": 0, "width": 640, "height": 480}, (640, 480), "inside"),
    ({"x": 600, "y": 5, "width": 40, "height": 470}, (640, 480), "inside"),
])
def test_placement_and_bounds(box: dict, size: tuple[int, int], place: str) -> None:
    layout = layout_label(LABEL, box, size)
    assert layout.place == place
    assert 0 <= layout.x and layout.x + layout.width <= size[0]
    assert 0 <= layout.y and layout.y + layout.height <= size[1]
    if place == "inside":  # the eyes sit at ~30-50% of the box height
        assert layout.y + layout.height <= box["y"] + 0.25 * box["height"] + 1


def test_text_scale_follows_image_size() -> None:
    box_small = {"x": 10, "y": 100, "width": 50, "height": 60}
    box_big = {"x": 100, "y": 1000, "width": 500, "height": 600}
    assert layout_label(LABEL, box_big, (4000, 3000)).height > 2 * layout_label(LABEL, box_small, (640, 480)).height


def test_annotate_draws_on_a_copy() -> None:
    image = np.zeros((200, 300, 3), np.uint8)
    face = {"box": {"x": 50, "y": 60, "width": 80, "height": 90}, "label": LABEL, "analyzed": True,
            "gender": {"value": "female"}, "quality": {"ok": True, "issues": []}}
    out = annotate(image, [face])
    assert image.sum() == 0 and out.sum() > 0 and out.shape == image.shape
