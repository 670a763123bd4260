"""Chip alignment from 5 landmarks: the similarity fit and the warp, on synthetic points and images."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from evaluation.landmark_chips import TEMPLATE, chip_matrix, landmark_chip, similarity, template_pixels


def _similarity(angle_deg: float, scale: float, tx: float, ty: float) -> np.ndarray:
    a = math.radians(angle_deg)
    return np.array([[scale * math.cos(a), -scale * math.sin(a), tx], [scale * math.sin(a), scale * math.cos(a), ty]])


def _apply(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    return points @ matrix[:, :2].T + matrix[:, 2]


def test_similarity_recovers_a_known_transform() -> None:
    src = np.array([[10.0, 20.0], [50.0, 22.0], [31.0, 40.0], [15.0, 60.0], [47.0, 61.0]])
    truth = _similarity(23.0, 1.7, -12.5, 40.0)
    np.testing.assert_allclose(similarity(src, _apply(truth, src)), truth, atol=1e-9)


def test_similarity_is_the_least_squares_fit_and_never_reflects() -> None:
    rng = np.random.default_rng(1)
    src = rng.uniform(0, 100, (5, 2))
    dst = _apply(_similarity(-8.0, 0.6, 3.0, 4.0), src) + rng.normal(0, 2.0, (5, 2))
    # A similarity is linear in (a, b, tx, ty): x' = a x - b y + tx, y' = b x + a y + ty.
    rows = np.vstack([np.column_stack([src[:, 0], -src[:, 1], np.ones(5), np.zeros(5)]),
                      np.column_stack([src[:, 1], src[:, 0], np.zeros(5), np.ones(5)])])
    (a, b, tx, ty), *_ = np.linalg.lstsq(rows, np.concatenate([dst[:, 0], dst[:, 1]]), rcond=None)
    np.testing.assert_allclose(similarity(src, dst), [[a, -b, tx], [b, a, ty]], atol=1e-9)
    mirrored = src * [-1, 1]
    assert np.linalg.det(similarity(src, mirrored)[:, :2]) > 0


def test_coincident_points_are_refused() -> None:
    with pytest.raises(ValueError, match="coincide"):
        similarity(np.ones((5, 2)), np.zeros((5, 2)))


def _dots(shape: tuple[int, int], points: np.ndarray, radius: int) -> np.ndarray:
    image = np.zeros((*shape, 3), np.uint8)
    for x, y in points:
        cv2.circle(image, (round(x * 16), round(y * 16)), radius * 16, (255, 255, 255), -1, cv2.LINE_AA, shift=4)
    return image


def _centroids(chip: np.ndarray) -> np.ndarray:
    grey = cv2.cvtColor(chip, cv2.COLOR_BGR2GRAY)
    _, _, stats, centres = cv2.connectedComponentsWithStats((grey > 60).astype(np.uint8))
    order = np.argsort(stats[1:, cv2.CC_STAT_AREA])[::-1][:5] + 1
    return centres[order]


@pytest.mark.parametrize(("angle", "scale"), [(0.0, 1.0), (17.0, 3.3), (-31.0, 7.5), (8.0, 0.8)])
def test_landmarks_land_on_the_template(angle: float, scale: float) -> None:
    # A face whose 5 landmarks are the template seen through a rotated, scaled, shifted camera.
    size, padding = 64, 0.2
    face = template_pixels(size, padding)
    points = _apply(_similarity(angle, scale, 500.0, 480.0), face - 32)
    image = _dots((1000, 1000), points, radius=max(2, round(1.5 * scale)))
    chip = landmark_chip(image, points, size, padding)
    assert chip.shape == (size, size, 3)
    found = _centroids(chip)
    # Each template point has a dot within a pixel of it.
    distance = np.linalg.norm(found[:, None] - face[None], axis=2)
    assert distance.min(axis=0).max() < 1.0


def test_matrix_maps_points_to_the_template_in_chip_pixels() -> None:
    points = np.array([[120.0, 130.0], [200.0, 128.0], [160.0, 175.0], [128.0, 210.0], [196.0, 208.0]])
    matrix = chip_matrix(points, 64, 0.2)
    mapped = _apply(matrix, points)
    target = template_pixels(64, 0.2)
    assert np.abs(mapped - target).max() < 6  # a real face is not the template: residuals, but small
    # The padding widens the frame: the unit square spans 64 / 1.4 px, centred.
    np.testing.assert_allclose(template_pixels(64, 0.2, np.array([[0.0, 0.0], [1.0, 1.0]])),
                               [[64 * 0.2 / 1.4 - 0.5] * 2, [64 * 1.2 / 1.4 - 0.5] * 2])
    assert TEMPLATE.shape == (5, 2)


@pytest.mark.parametrize("scale", [16.0, 8.0, 7.3, 4.5])
def test_a_large_face_is_shrunk_without_aliasing(scale: float) -> None:
    # One-pixel stripes: a plain bilinear warp to 1/scale samples them into moire or a flat wrong grey;
    # from 4x down the chip must average them to mid-grey, as dlib's pyramid does.
    stripes = np.zeros((1200, 1200, 3), np.uint8)
    stripes[:, ::2] = 255
    points = _apply(_similarity(0.0, scale, 600.0, 600.0), template_pixels(64, 0.2) - 32)
    chip = landmark_chip(stripes, points, 64, 0.2).astype(np.float64)
    assert abs(chip.mean() - 127.5) < 8 and chip.std() < 25
    plain = cv2.warpAffine(stripes, chip_matrix(points, 64, 0.2), (64, 64), flags=cv2.INTER_LINEAR)
    assert abs(plain.mean() - 127.5) > 50 or plain.std() > 50


def test_a_face_off_the_image_gives_a_black_border_not_an_error() -> None:
    image = np.full((100, 100, 3), 200, np.uint8)
    points = _apply(_similarity(0.0, 2.0, -40.0, -40.0), template_pixels(64, 0.2))
    chip = landmark_chip(image, points, 64, 0.2)
    assert chip.shape == (64, 64, 3) and chip[0, 0].tolist() == [0, 0, 0] and chip[-1, -1].tolist() == [200, 200, 200]
    far = _apply(_similarity(0.0, 4.0, 5000.0, 5000.0), template_pixels(64, 0.2))
    assert not landmark_chip(image, far, 64, 0.2).any()


def test_a_face_under_four_times_the_chip_is_warped_in_one_step() -> None:
    # Sharper chips read better (README Accuracy): no pre-shrink while bilinear aliases little.
    rng = np.random.default_rng(3)
    image = rng.integers(0, 256, (400, 400, 3), np.uint8)
    points = _apply(_similarity(12.0, 3.9, 200.0, 200.0), template_pixels(64, 0.2) - 32)
    plain = cv2.warpAffine(image, chip_matrix(points, 64, 0.2), (64, 64), flags=cv2.INTER_LINEAR)
    np.testing.assert_array_equal(landmark_chip(image, points, 64, 0.2), plain)
