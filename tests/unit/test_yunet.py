"""The YuNet adapter (cv2.FaceDetectorYN on models/yunet.onnx): sizes, landmarks, threads, forks; any aspect ratio.

Real library, real photos: malformed sizes must give an answer (maybe no face), never a crash, and every
aspect ratio the limits accept must answer 200 or a clear 4xx through the service and the Lambda edge.
"""

from __future__ import annotations

import base64
import copy
import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np
import pytest
from helpers import fixture_image, jpeg, load_event, png

from handler import aws, detection
from handler.config import load_settings, usable_cores
from handler.detection import Detection, _scaled
from handler.errors import ConfigError, RequestError
from handler.face import LANDMARKS
from handler.runtime import get_models
from handler.service import DEFAULT_OPTIONS, analyze_bytes

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def detector():
    return get_models()["detector"]


@pytest.mark.parametrize("shape", [(1, 1, 3), (1, 8000, 3), (8000, 1, 3), (3, 5000, 3), (5000, 3, 3), (2, 2, 3),
                                   (7, 9, 3), (31, 33, 3)])
def test_malformed_sizes_answer_without_crashing(detector, shape) -> None:
    image = np.random.default_rng(0).integers(0, 256, shape, np.uint8)
    for detail in ("fast", "auto", "full"):
        assert detector.detect(image, 0.75, detail) == []


def test_grey_and_non_contiguous_inputs_match_the_plain_colour_one(detector) -> None:
    image = fixture_image("astronaut.png")
    (plain,) = detector.detect(image, 0.75)
    (strided,) = detector.detect(np.ascontiguousarray(image[:, ::-1])[:, ::-1], 0.75)  # negative stride view
    assert strided == plain
    padded = np.zeros((512, 600, 3), np.uint8)
    padded[:, :512] = image
    (view,) = detector.detect(padded[:, :512], 0.75)  # rows longer than the image
    assert view == plain
    grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    (from_grey,) = detector.forward(grey, 0.75)
    assert abs(from_grey.x1 - plain.x1) < 10 and abs(from_grey.y1 - plain.y1) < 10


def test_landmarks_are_five_points_inside_the_box_in_image_pixels(detector) -> None:
    image = fixture_image("astronaut.png")
    for scale in (1.0, 4.0):  # 4x: 2048 px, the finer pass; points must come back in the photo's pixels
        big = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC)
        (face,) = detector.detect(big, 0.75, "full")
        x1, y1, x2, y2, confidence, landmarks = face
        assert 0.75 <= confidence <= 1 and len(landmarks) == 5
        assert all(x1 <= x <= x2 and y1 <= y <= y2 for x, y in landmarks)
        right_eye, left_eye, nose, right_mouth, left_mouth = landmarks
        assert right_eye[0] < left_eye[0] and right_mouth[0] < left_mouth[0]  # the subject's right: image left
        assert max(right_eye[1], left_eye[1]) < nose[1] < min(right_mouth[1], left_mouth[1])


def test_threads_give_the_same_answers(detector) -> None:
    images = [fixture_image(n) for n in ("astronaut.png", "camera.png", "coffee.png", "chelsea.png")] * 4
    alone = [detector.detect(im, 0.75) for im in images]
    with ThreadPoolExecutor(4) as pool:
        assert list(pool.map(lambda im: detector.detect(im, 0.75), images)) == alone


FORK = """
import os, sys
from handler.runtime import get_models
from helpers import fixture_image
d = get_models()["detector"]
image = fixture_image("astronaut.png")
d.detect(image, 0.75)  # OpenCV's 2-thread pool exists now
pid = os.fork()
if pid == 0:
    os._exit(0 if len(d.detect(image, 0.75)) == 1 else 3)
sys.exit(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))
"""


def test_a_forked_child_still_detects_with_several_threads() -> None:
    # bulk/local.py spawns (OpenCV's pools and fork()); a process that forks anyway must still detect.
    proc = subprocess.run([sys.executable, "-c", FORK], cwd=ROOT, capture_output=True, text=True, timeout=120,
                          env={"DETECT_THREADS": "2", "LOG_LEVEL": "WARNING", "PYTHONPATH": f"{ROOT}:{ROOT}/tests",
                               "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stderr[-2000:]


def test_detect_threads_is_validated() -> None:
    assert load_settings({"DETECT_THREADS": "4"}).detect_threads == 4
    assert load_settings({}).detect_threads == 0  # one per usable core (handler/runtime.py)
    for bad in ("-1", "65", "two"):
        with pytest.raises(ConfigError, match="DETECT_THREADS"):
            load_settings({"DETECT_THREADS": bad})


def test_the_default_thread_count_is_the_usable_cores() -> None:
    """DETECT_THREADS=0 (the default) gives OpenCV one thread per core this process may use."""
    proc = subprocess.run([sys.executable, "-c", "import cv2, handler; print(cv2.getNumThreads())"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120,
                          env={**os.environ, "DETECT_THREADS": "0", "LOG_LEVEL": "WARNING", "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 0, proc.stderr
    assert int(proc.stdout.split()[-1]) == usable_cores()


# ------------------------------------------------------------------------ any aspect ratio

ODD = [(1, 8000), (8000, 1), (3, 5000), (5000, 3)]  # (width, height)


def _odd_image(width: int, height: int) -> np.ndarray:
    return np.random.default_rng(width).integers(0, 256, (height, width, 3), np.uint8)


@pytest.mark.parametrize("encode", [png, jpeg], ids=["png", "jpeg"])
@pytest.mark.parametrize("size", ODD, ids=[f"{w}x{h}" for w, h in ODD])
def test_any_aspect_ratio_answers_or_refuses_clearly(size, encode) -> None:
    body = encode(_odd_image(*size))
    try:
        result = analyze_bytes(body, DEFAULT_OPTIONS).result
    except RequestError as exc:  # a clear 4xx is acceptable; anything else would be a 500
        assert 400 <= exc.status < 500 and exc.code
        return
    assert result["faces"] == [] and result["image"]["width"] == size[0]


@pytest.mark.parametrize("size", ODD[:2], ids=[f"{w}x{h}" for w, h in ODD[:2]])
def test_any_aspect_ratio_over_the_lambda_edge(size) -> None:
    event = copy.deepcopy(load_event("apiGatewayProxyV2Event.json"))
    event.update(body=base64.b64encode(png(_odd_image(*size))).decode(), isBase64Encoded=True)
    event["headers"] = {**event.get("headers", {}), "content-type": "image/png"}
    response = aws.lambda_handler(event, None)
    assert response["statusCode"] == 200 or 400 <= response["statusCode"] < 500, response
    json.loads(response["body"])


# ------------------------------------------------------------------------ a real group photo

def test_real_group_photo_has_six_faces_at_every_detail(detector) -> None:
    # insightface's t1.jpg (tests/fetch_fixtures.py): six people, faces ~95-107 px in 1280x886.
    image = fixture_image("group6.jpg")
    for detail in ("fast", "auto", "full"):
        faces = detector.detect(image, 0.75, detail)
        assert len(faces) == 6, detail
        assert all(len(f.landmarks) == 5 for f in faces)
    result = analyze_bytes(jpeg(image), DEFAULT_OPTIONS).result
    assert result["faces_detected"] == 6


# ------------------------------------------------------------------------ landmarks in the answer

def test_scaled_maps_pixel_centres() -> None:
    # The resized image's pixel 0 covers the photo's [0, 4): its centre, 0, is the photo's 1.5.
    det = _scaled(Detection(0.0, 0.0, 10.0, 10.0, 0.9, ((0.0, 0.0),) * 5), 0.25)
    assert (det.x1, det.x2) == (1.5, 41.5) and det.landmarks[0] == (1.5, 1.5)


def test_the_answer_gives_five_named_points_in_the_original_photos_pixels() -> None:
    image = fixture_image("astronaut.png")
    small = analyze_bytes(png(image), DEFAULT_OPTIONS).result["faces"][0]
    assert list(small["landmarks"]) == list(LANDMARKS)
    box = small["box"]
    for x, y in small["landmarks"].values():
        assert box["x"] <= x <= box["x"] + box["width"] and box["y"] <= y <= box["y"] + box["height"]
    # A 4x JPEG bigger than MAX_PIXELS is analysed reduced: its points still come back in its own pixels.
    big = cv2.resize(image, None, fx=4, fy=4, interpolation=cv2.INTER_CUBIC)
    outcome = analyze_bytes(jpeg(big), DEFAULT_OPTIONS.merged({"detail": "fast"}))
    (face,) = outcome.result["faces"]
    tolerance = 0.1 * face["box"]["width"]  # the same face seen at another input size (unscaled: ~600 px off)
    for name, (x, y) in face["landmarks"].items():
        sx, sy = small["landmarks"][name]
        assert abs(x - ((sx + 0.5) * 4 - 0.5)) < tolerance and abs(y - ((sy + 0.5) * 4 - 0.5)) < tolerance, name


# ------------------------------------------------------------------------ small faces in big photos

def _decoded(image: np.ndarray) -> np.ndarray:
    return cv2.imdecode(np.frombuffer(jpeg(image), np.uint8), cv2.IMREAD_COLOR)


def test_weak_small_boxes_of_the_reduced_pass_are_checked_at_full_resolution(detector, monkeypatch) -> None:
    from evaluation.group_recall import background, paste_canvas

    faces = [(fixture_image("astronaut.png")[37:197, 146:306], "a", "female"),
             (fixture_image("camera.png")[101:211, 172:282], "c", "male")] * 10
    # Tight 60 px face crops in 12 MP: 30 px in the 2000 px pass, where YuNet scores them low.
    canvas, _ = paste_canvas(background(4000, 3000), faces, 60, np.random.default_rng(1))
    found = detector.detect(_decoded(canvas), 0.75)
    monkeypatch.setattr(detection, "VERIFY_BELOW_SCALE", 0.0)  # the finer pass alone, as before issue 24
    alone = detector.detect(_decoded(canvas), 0.75)
    assert len(alone) <= 3 and 8 <= len(found) <= len(faces)
    monkeypatch.undo()
    for name in ("coffee.png", "chelsea.png"):  # and no box where there is no face
        assert detector.detect(_decoded(background(4000, 3000, name)), 0.75) == []
