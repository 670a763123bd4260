"""The redacted output: every face gone (a re-run finds none), every other pixel as it was."""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np
import pytest
from helpers import fixture_bytes, fixture_image, png

from handler import runtime
from handler.config import SETTINGS
from handler.errors import RequestError
from handler.imaging import encode_jpeg
from handler.pipeline import detect_faces
from handler.redact import REDACT_MIN_CONFIDENCE, grow, pixelate
from handler.service import DEFAULT_OPTIONS, analyze_bytes, parse_options

MODELS = runtime.get_models()
MCU = 16  # a JPEG macroblock with 4:2:0 chroma: pixels in untouched blocks encode identically


def decoded(jpeg: bytes) -> np.ndarray:
    return cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)


def outside(regions: list[dict], shape: tuple[int, ...], pad: int = 0, grid: int = 1) -> np.ndarray:
    """Mask of pixels outside every region, each region widened to `grid` multiples and then by `pad`."""
    mask = np.ones(shape[:2], bool)
    for r in regions:
        x1, y1 = r["x"] // grid * grid - pad, r["y"] // grid * grid - pad
        x2 = -(-(r["x"] + r["width"]) // grid) * grid + pad
        y2 = -(-(r["y"] + r["height"]) // grid) * grid + pad
        mask[max(y1, 0):y2, max(x1, 0):x2] = False
    return mask


def found_in(image: np.ndarray, regions: list[dict]) -> list:
    """Detections at the redaction's own low threshold whose centre lies in a redacted region."""
    def inside(face, r) -> bool:
        cx, cy = face.box["x"] + face.box["width"] / 2, face.box["y"] + face.box["height"] / 2
        return r["x"] <= cx <= r["x"] + r["width"] and r["y"] <= cy <= r["y"] + r["height"]
    return [f for f in detect_faces(image, MODELS, REDACT_MIN_CONFIDENCE) if any(inside(f, r) for r in regions)]


def redacted(data: bytes, **options) -> tuple[np.ndarray, dict]:
    outcome = analyze_bytes(data, parse_options({"output": "redacted", **options}))
    assert outcome.annotated_jpeg is None and outcome.redacted_jpeg is not None
    return decoded(outcome.redacted_jpeg), outcome.result


def test_pixelate_changes_only_the_regions_into_flat_blocks() -> None:
    image = fixture_image("astronaut.png")
    regions = [{"x": 157, "y": 28, "width": 138, "height": 179}, {"x": 0, "y": 500, "width": 40, "height": 12}]
    out = pixelate(image, regions)
    keep = outside(regions, image.shape)
    assert np.array_equal(out[keep], image[keep]) and out.shape == image.shape
    face = out[28:28 + 179, 157:157 + 138]
    assert len(np.unique(face.reshape(-1, 3), axis=0)) <= 6 * 6  # 6 blocks across the longer side, at most
    assert not np.array_equal(face, image[28:28 + 179, 157:157 + 138])


def test_grow_adds_a_margin_and_stays_inside_the_image() -> None:
    assert grow({"x": 100, "y": 100, "width": 40, "height": 80}, (400, 400)) == \
        {"x": 90, "y": 80, "width": 60, "height": 120}
    assert grow({"x": 2, "y": 390, "width": 40, "height": 80}, (400, 400)) == \
        {"x": 0, "y": 370, "width": 52, "height": 30}


@pytest.mark.parametrize("name", ["astronaut.png", "camera.png"])
def test_redacted_photo_has_no_face_and_is_otherwise_unchanged(name: str) -> None:
    original = fixture_image(name)
    image, result = redacted(fixture_bytes(name))
    regions = result["redacted_regions"]
    assert result["faces_detected"] == 1 and len(regions) == 1
    face, region = result["faces"][0]["box"], regions[0]
    assert region["x"] < face["x"] and region["y"] < face["y"]  # the box plus a margin
    assert region["x"] + region["width"] > face["x"] + face["width"]
    # A re-run finds nothing, even at the redaction's own low threshold.
    assert detect_faces(image, MODELS, REDACT_MIN_CONFIDENCE) == []
    assert analyze_bytes(png(image)).result["faces_detected"] == 0
    # Outside the regions (widened to whole JPEG blocks and one block more, for chroma upsampling)
    # every pixel equals the same photo JPEG-encoded without redaction: bit for bit, no tolerance.
    reference = decoded(encode_jpeg(original, SETTINGS.jpeg_quality))
    keep = outside(regions, image.shape, pad=MCU, grid=MCU)
    assert keep.mean() > 0.6
    assert np.array_equal(image[keep], reference[keep])


def test_faces_beyond_max_faces_are_redacted(four_faces_jpeg: bytes) -> None:
    image, result = redacted(four_faces_jpeg, max_faces=1)
    assert result["faces_detected"] == 4 and result["faces_analyzed"] == 1
    assert len(result["redacted_regions"]) >= 4
    assert found_in(image, result["redacted_regions"]) == []
    assert analyze_bytes(png(image)).result["faces_detected"] == 0


@pytest.mark.parametrize("name", ["astronaut.png", "camera.png"])
def test_faces_under_the_analysis_threshold_are_redacted_too(name: str) -> None:
    """A blurred face scores 0.64-0.90 with YuNet: under the request's threshold here, over the redaction's."""
    photo = cv2.GaussianBlur(fixture_image(name), (0, 0), 6)
    assert detect_faces(photo, MODELS, REDACT_MIN_CONFIDENCE)
    image, result = redacted(png(photo), min_confidence=0.95)
    assert result["faces_detected"] == 0 and result["redacted_regions"]
    assert found_in(image, result["redacted_regions"]) == []


def test_no_face_leaves_the_photo_as_it_was() -> None:
    image, result = redacted(fixture_bytes("coffee.png"))
    assert result["redacted_regions"] == [] and result["faces_detected"] == 0
    assert np.array_equal(image, decoded(encode_jpeg(fixture_image("coffee.png"), SETTINGS.jpeg_quality)))


@pytest.mark.parametrize("options", [{"output": "blurred"}, {"output": ["redacted"]},
                                     {"output": "redacted", "annotate": False}])
def test_bad_output_option_is_invalid_options(options: dict) -> None:
    with pytest.raises(RequestError) as error:
        parse_options(options)
    assert error.value.code == "invalid_options"


def test_output_option_picks_the_image() -> None:
    assert (parse_options({"output": "redacted"}).annotate, parse_options({"output": "redacted"}).redact) == \
        (False, True)
    assert parse_options({"output": "annotated"}) == DEFAULT_OPTIONS
    both = analyze_bytes(fixture_bytes("camera.png"), dataclasses.replace(DEFAULT_OPTIONS, redact=True))
    assert both.annotated_jpeg and both.redacted_jpeg and "redact" in both.result["timings_ms"]
