"""Label placement, checked on the drawn rectangles: no text over another text or any face (its own box's
top quarter excepted), all inside the canvas, never smaller than the legibility floor; crowds get numbers
and a legend; faces beyond the face limit get a number and no text."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from handler.annotate import annotate
from handler.face import Face
from handler.label_layout import Plan, plan
from handler.label_text import MIN_TEXT_PX, min_number_height, min_text_height
from handler.legend_layout import NOT_ANALYZED_LEGEND

LABEL = "Female, (25-32)"
LONG = "Face unclear: use a sharp, frontal photo"


def _overlap(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> bool:
    return a[0] < b[0] + b[2] and b[0] < a[0] + a[2] and a[1] < b[1] + b[3] and b[1] < a[1] + a[3]


def _rect(box: dict) -> tuple[int, int, int, int]:
    return box["x"], box["y"], box["width"], box["height"]


def check(layout: Plan, boxes: list[dict], size: tuple[int, int]) -> None:
    """The placement rules, from the rectangles alone."""
    width, height = size
    assert layout.width >= width and layout.photo_height == height and layout.height >= height
    assert layout.min_text_height == min_text_height(width) >= max(MIN_TEXT_PX, width / 64)
    assert min_number_height(width) >= max(MIN_TEXT_PX, width / 200)
    texts = layout.texts
    for i, t in enumerate(texts):
        assert 0 <= t.x and t.x + t.width <= layout.width and 0 <= t.y and t.y + t.height <= layout.height
        # Labels and legend lines at the phone-legible floor; a crowded face's number at the 100 % floor.
        floor = min_number_height(width) if t.text.isdigit() else layout.min_text_height
        assert t.text_height >= floor - 1  # the font rounds to whole pixels
        if t.face is not None:  # on the photo, not in the legend band
            assert t.y + t.height <= height
        for other in texts[i + 1:]:
            assert not _overlap(t.rect, other.rect), (t, other)
        for j, box in enumerate(boxes):
            if not _overlap(t.rect, _rect(box)):
                continue
            # Only its own face, and only above the eyes (the seed's rule for a face filling the photo).
            assert j == t.face and t.place == "inside", (t, box)
            assert t.y + t.height <= box["y"] + 0.25 * box["height"] + 1
    faces = [t.face for t in texts if t.face is not None]
    assert len(faces) == len(set(faces))


@pytest.mark.parametrize("box, size, place", [
    ({"x": 100, "y": 200, "width": 100, "height": 120}, (640, 480), "above"),
    ({"x": 100, "y": 0, "width": 100, "height": 120}, (640, 480), "below"),
    ({"x": 0, "y": 0, "width": 640, "height": 480}, (640, 480), "inside"),
    ({"x": 600, "y": 5, "width": 40, "height": 470}, (640, 480), "left"),
])
def test_one_face_keeps_its_label_beside_it(box: dict, size: tuple[int, int], place: str) -> None:
    layout = plan([box], [LABEL], size)
    check(layout, [box], size)
    assert not layout.numbered and (layout.width, layout.height) == size  # no legend band for one labelled face
    assert layout.for_face(0).place == place and layout.for_face(0).text == LABEL


def test_text_scale_follows_image_size() -> None:
    small = plan([{"x": 10, "y": 100, "width": 50, "height": 60}], [LABEL], (640, 480)).for_face(0)
    big = plan([{"x": 100, "y": 1000, "width": 500, "height": 600}], [LABEL], (4000, 3000)).for_face(0)
    assert big.height > 2 * small.height


def grid_boxes(size: tuple[int, int], n: int, face: int, gap: int) -> list[dict]:
    width, _ = size
    cols = max(1, (width - gap) // (face + gap))
    return [{"x": gap + (k % cols) * (face + gap), "y": gap + (k // cols) * (face + gap), "width": face,
             "height": face} for k in range(n)]


def test_a_dense_crowd_is_numbered_with_a_legend() -> None:
    size = (2048, 1536)
    boxes = grid_boxes(size, 100, 60, 40)
    labels = [["Male, (25-32)", "Female, (38-43)", LONG][k % 3] for k in range(100)]
    layout = plan(boxes, labels, size)
    check(layout, boxes, size)
    assert layout.numbered and layout.height > size[1]
    assert sorted(t.text for t in layout.texts if t.face is not None) == sorted(str(k) for k in range(1, 101))
    legend = " ".join(t.text for t in layout.texts if t.face is None)
    assert "Male, (25-32): 1, 4, 7" in legend and LONG in legend


def test_faces_beyond_the_limit_get_a_number_and_no_text() -> None:
    size = (1280, 960)
    boxes = grid_boxes(size, 12, 120, 80)
    labels = [LABEL] * 10 + [None, None]
    layout = plan(boxes, labels, size)
    check(layout, boxes, size)
    assert [layout.for_face(i).text for i in (10, 11)] == ["11", "12"]
    legend = [t.text for t in layout.texts if t.face is None]
    assert legend[-1] == f"{NOT_ANALYZED_LEGEND}: 11 to 12"
    assert not any(t.text == LABEL and t.face in (10, 11) for t in layout.texts)


SIZES = st.sampled_from([(640, 480), (480, 640), (1024, 1024), (2048, 1536), (1536, 2048), (2048, 512),
                         (512, 2048), (4000, 3000), (3000, 4000), (120, 90), (3, 5000), (5000, 3)])


@st.composite
def layouts(draw) -> tuple[tuple[int, int], list[dict], list[str | None]]:
    """Non-overlapping face boxes (a detector's boxes after NMS) of any size, edges included."""
    size = draw(SIZES)
    width, height = size
    n = draw(st.integers(1, 100))
    smallest = draw(st.integers(8, max(8, min(width, height) // 4)))
    boxes: list[dict] = []
    for _ in range(n):
        side = draw(st.integers(smallest, max(smallest, min(width, height) // draw(st.sampled_from([1, 3, 10])))))
        side = min(side, width, height)
        x = draw(st.integers(0, width - side))
        y = draw(st.integers(0, height - side))
        rect = (x, y, side, side)
        if not any(_overlap(rect, _rect(b)) for b in boxes):
            boxes.append({"x": x, "y": y, "width": side, "height": side})
    limit = draw(st.integers(1, 100))
    labels = [draw(st.sampled_from([LABEL, LONG, "Male, (60-100)", "Child, gender unclear, (4-6)"]))
              if k < limit else None for k in range(len(boxes))]
    return size, boxes, labels


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(layouts())
def test_no_text_covers_a_face_or_another_text(case) -> None:
    size, boxes, labels = case
    check(plan(boxes, labels, size), boxes, size)


@pytest.mark.parametrize("size", [(640, 480), (4000, 3000), (3000, 4000), (4000, 1000)])
@pytest.mark.parametrize("n", [1, 24, 100])
def test_grids_and_edges_get_every_face_named(size: tuple[int, int], n: int) -> None:
    # Faces at the very edges and corners, and a grid with a number's room between faces (3x the crowded
    # floor; a crowd packed tighter than that may leave some faces unnumbered): every face gets its text.
    width, height = size
    face = max(12, min(width, height) // 12)
    boxes = grid_boxes(size, n - 1, face, 3 * min_number_height(width)) if n > 1 else []
    boxes.append({"x": width - face, "y": height - face, "width": face, "height": face})
    boxes = [b for b in boxes if b["y"] + face <= height and not any(
        _overlap(_rect(b), _rect(c)) for c in boxes if c is not b and c["x"] == width - face)]
    layout = plan(boxes, [LABEL] * len(boxes), size)
    check(layout, boxes, size)
    assert {t.face for t in layout.texts if t.face is not None} == set(range(len(boxes)))


def test_annotate_draws_on_a_copy() -> None:
    image = np.zeros((200, 300, 3), np.uint8)
    face = Face(raw_box=(50, 60, 130, 150), box={"x": 50, "y": 60, "width": 80, "height": 90}, detection_confidence=1.0,
                inside=1.0, label=LABEL, analyzed=True, rank=1, gender={"value": "female"})
    out = annotate(image, [face])
    assert image.sum() == 0 and out.sum() > 0 and out.shape[1] == image.shape[1]
    assert np.array_equal(out[:200].astype(bool).any(axis=2)[0:40, 200:], np.zeros((40, 100), bool))


def test_annotate_a_crowd_adds_the_legend_band() -> None:
    image = np.zeros((480, 640, 3), np.uint8)
    faces = [Face(raw_box=(b["x"], b["y"], b["x"] + b["width"], b["y"] + b["height"]), box=b, detection_confidence=1.0,
                  inside=1.0, label=LABEL, analyzed=k < 10, rank=k + 1, gender={"value": "female"})
             for k, b in enumerate(grid_boxes((640, 480), 30, 40, 30))]
    out = annotate(image, faces)
    assert out.shape[0] > 480 and out.shape[1] == 640 and (out[480:] == 255).mean() > 0.5
