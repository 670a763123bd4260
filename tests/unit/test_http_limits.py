"""Responses stay under Lambda's 6 MB payload limit: a big annotated image is shrunk, not dropped."""

from __future__ import annotations

import base64
import json

import cv2
import numpy as np

from handler.config import LAMBDA_PAYLOAD_LIMIT
from handler.http_api import HttpRequest, handle


def noisy_photo() -> bytes:
    """A 12 MP image of noise: tiny as a low-quality input, huge once re-encoded for the annotation."""
    noise = np.random.default_rng(0).integers(0, 256, (3000, 4000, 3), dtype=np.uint8)
    data = cv2.imencode(".jpg", noise, [cv2.IMWRITE_JPEG_QUALITY, 20])[1].tobytes()
    assert len(data) < LAMBDA_PAYLOAD_LIMIT
    return data


def test_json_and_jpeg_responses_fit_the_payload_limit() -> None:
    data = noisy_photo()
    for accept in ("application/json", "image/jpeg"):
        response = handle(HttpRequest("POST", "/analyze", {"content-type": "image/jpeg", "accept": accept}, {}, data))
        assert response.status == 200
        on_the_wire = len(response.body) if accept == "application/json" else len(base64.b64encode(response.body))
        assert on_the_wire < LAMBDA_PAYLOAD_LIMIT
    result = json.loads(handle(HttpRequest("POST", "/analyze", {"content-type": "image/jpeg"}, {}, data)).body)
    assert result["annotated_scale"] < 1
    shrunk = cv2.imdecode(np.frombuffer(base64.b64decode(result["annotated_jpeg_base64"]), np.uint8), cv2.IMREAD_COLOR)
    assert abs(shrunk.shape[1] - 4000 * result["annotated_scale"]) <= 4  # the scale is rounded to 3 places
