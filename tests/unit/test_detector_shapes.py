"""A detector per input shape (handler/detector_shapes.py): which shapes share one, which are dropped, and
that the answer never depends on the shapes seen before (real cv2.FaceDetectorYN, real photos)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from helpers import fixture_image

from handler.detector_shapes import DetectorsByShape, padded
from handler.models import YuNetDetector, load_net
from handler.runtime import get_models


def _cache(budget: int) -> DetectorsByShape:
    model = str(get_models()["detector"].spec.files["weights"])
    return DetectorsByShape(lambda: cv2.FaceDetectorYN.create(model, "", (320, 320)), budget)


def test_shapes_that_pad_alike_share_a_detector() -> None:
    assert padded(640, 427) == padded(640, 448) == (640, 448)
    assert padded(1, 33) == (32, 64)
    cache = _cache(10**7)
    first = cache.get(640, 427)
    assert cache.get(630, 448) is first
    assert cache.get(427, 640) is not first
    assert cache.shapes() == [(640, 448), (448, 640)]


def test_the_least_recently_used_shape_goes_beyond_the_budget() -> None:
    cache = _cache(640 * 480 * 2)
    landscape = cache.get(640, 480)
    cache.get(480, 640)
    assert cache.get(640, 480) is landscape  # now the most recent
    cache.get(320, 320)  # over budget: the portrait one, least recently used, goes
    assert cache.shapes() == [(640, 480), (320, 320)]
    cache.get(4000, 3000)  # bigger than the budget alone: kept, alone
    assert cache.shapes() == [(4000, 3008)]
    assert cache.pixels() == 4000 * 3008


def test_a_detector_is_set_to_the_input_size_it_is_handed_out_for() -> None:
    cache = _cache(10**7)
    image = fixture_image("astronaut.png")
    detector = cache.get(640, 448)
    assert cache.get(*image.shape[1::-1]) is not detector
    _, rows = cache.get(*image.shape[1::-1]).detect(image)
    assert rows is not None and len(rows) == 1


@pytest.mark.parametrize("between", [(4000, 3000), (300, 200), (640, 480)])
def test_the_answer_does_not_depend_on_the_shapes_seen_before(between) -> None:
    detector = get_models()["detector"]
    image = fixture_image("astronaut.png")
    before = detector.detect(image, 0.5, "full")
    other = cv2.resize(fixture_image("group6.jpg"), between, interpolation=cv2.INTER_AREA)
    detector.detect(other, 0.5, "full")
    assert detector.detect(image, 0.5, "full") == before
    assert detector.forward(np.zeros((480, 640, 3), np.uint8), 0.5) == []


def test_the_copies_share_one_budget() -> None:
    pool = load_net(get_models()["detector"].spec, clones=3, threads=cv2.getNumThreads())
    budgets = [pool._free.get().budget for _ in range(3)]
    assert budgets == [YuNetDetector._SHAPE_PIXELS // 3] * 3
