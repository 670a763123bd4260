"""Every route and error case through a real functions-framework process on 127.0.0.1."""

from __future__ import annotations

import base64
import json
from concurrent.futures import ThreadPoolExecutor

import cv2
import numpy as np
import pytest
from helpers import fixture_bytes, png_header_only
from http_client import call, post_json
from servers import functions_framework

B64 = base64.b64encode


def faces_summary(result: dict) -> list[tuple]:
    return [(f["box"]["x"], f["box"]["y"], f["label"], f["gender"] and f["gender"]["confidence"],
             f["age"] and f["age"]["years"]) for f in result["faces"]]


def test_page(http_server: str) -> None:
    status, headers, body = call(http_server + "/")
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    assert b"faceread" in body


def test_health(http_server: str) -> None:
    status, _, body = call(http_server + "/health")
    payload = json.loads(body)
    assert status == 200 and payload["warm"] is True
    assert set(payload["models"]) == {"detector", "landmarks", "gender", "agegender"}


def test_analyze_json_base64(http_server: str) -> None:
    status, result = post_json(http_server + "/analyze", {"image": B64(fixture_bytes("camera.png")).decode()})
    assert status == 200, result
    assert result["faces_detected"] == 1
    assert result["faces"][0]["gender"]["value"] == "male"
    assert set(result["timings_ms"]) >= {"decode", "detect", "attributes", "annotate", "total"}
    annotated = cv2.imdecode(np.frombuffer(base64.b64decode(result["annotated_jpeg_base64"]), np.uint8),
                             cv2.IMREAD_COLOR)
    assert annotated.shape[:2] == (result["image"]["height"], result["image"]["width"])


def test_analyze_data_url_and_no_annotation(http_server: str) -> None:
    url = "data:image/png;base64," + B64(fixture_bytes("camera.png")).decode()
    status, result = post_json(http_server + "/analyze", {"image": url, "options": {"annotate": False}})
    assert status == 200 and result["faces_detected"] == 1
    assert "annotated_jpeg_base64" not in result


def test_analyze_raw_body_and_jpeg_accept(http_server: str) -> None:
    status, headers, body = call(http_server + "/analyze", fixture_bytes("camera.png"), "POST",
                                 {"Content-Type": "image/png", "Accept": "image/jpeg"})
    assert status == 200 and headers["Content-Type"] == "image/jpeg"
    assert body[:3] == b"\xff\xd8\xff" and headers["X-Faces-Detected"] == "1"


def test_redacted_output_as_query_json_option_and_jpeg(http_server: str) -> None:
    photo = fixture_bytes("camera.png")
    status, _, raw = call(http_server + "/analyze?output=redacted", photo, "POST", {"Content-Type": "image/png"})
    result = json.loads(raw)
    assert status == 200 and result["faces_detected"] == 1 and len(result["redacted_regions"]) == 1
    assert "annotated_jpeg_base64" not in result and result["redacted_scale"] == 1.0
    status, by_option = post_json(http_server + "/analyze", {"image": B64(photo).decode(),
                                                              "options": {"output": "redacted"}})
    assert status == 200 and by_option["redacted_jpeg_base64"] == result["redacted_jpeg_base64"]
    status, headers, body = call(http_server + "/analyze?output=redacted", photo, "POST",
                                 {"Content-Type": "image/png", "Accept": "image/jpeg"})
    assert status == 200 and body == base64.b64decode(result["redacted_jpeg_base64"])
    assert headers["X-Redacted-Scale"] == "1.0"
    status, _, raw = call(http_server + "/analyze?output=blurred", photo, "POST", {"Content-Type": "image/png"})
    assert (status, json.loads(raw)["error"]["code"]) == (400, "invalid_options")


def test_no_face(http_server: str) -> None:
    status, _, body = call(http_server + "/analyze", fixture_bytes("coffee.png"), "POST", {"Content-Type": "image/png"})
    assert status == 200 and json.loads(body)["faces"] == []


BAD = [
    # (name, body, content type, status, code)
    ("empty", b"", "application/json", 400, "empty_body"),
    ("whitespace", b"  \n ", "application/json", 400, "empty_body"),
    ("invalid json", b"{not json", "application/json", 400, "invalid_json"),
    ("json array", b"[1, 2]", "application/json", 400, "invalid_json"),
    ("no image", b'{"picture": "x"}', "application/json", 400, "missing_field"),
    ("non-string image", b'{"image": 42}', "application/json", 400, "invalid_field"),
    ("invalid base64", b'{"image": "***not base64***"}', "application/json", 400, "invalid_base64"),
    ("base64 of text", json.dumps({"image": B64(b"hello world").decode()}).encode(), "application/json", 400,
     "invalid_image"),
    ("bad option", json.dumps({"image": "aGk=", "options": {"max_faces": 1000}}).encode(), "application/json", 400,
     "invalid_options"),
    ("unknown option", json.dumps({"image": "aGk=", "options": {"max_pixels": 10**9}}).encode(), "application/json",
     400, "invalid_options"),
    ("raw text", b"just some text", "image/jpeg", 400, "invalid_image"),
    ("wrong content type", b"hello", "text/plain", 415, "unsupported_media_type"),
    ("gif without a frame", b"GIF89a" + b"\x00" * 50, "image/gif", 400, "invalid_image"),
    ("heic", b"\x00\x00\x00\x18ftypheic" + b"\x00" * 50, "image/heic", 415, "unsupported_media_type"),
    ("bomb", png_header_only(40000, 40000), "image/png", 413, "too_many_pixels"),
    ("over 6 MB", b"\xff\xd8\xff" + b"\x00" * (6 * 1024 * 1024), "image/jpeg", 413, "payload_too_large"),
]


@pytest.mark.parametrize("name, body, content_type, status, code", BAD, ids=[b[0] for b in BAD])
def test_bad_input(http_server: str, name: str, body: bytes, content_type: str, status: int, code: str) -> None:
    got, headers, raw = call(http_server + "/analyze", body, "POST", {"Content-Type": content_type})
    assert headers["Content-Type"] == "application/json"
    assert (got, json.loads(raw)["error"]["code"]) == (status, code)
    assert len(raw) < 1000  # never echoes the body


@pytest.mark.parametrize("method, path, status, code", [
    ("GET", "/nope", 404, "not_found"),
    ("GET", "/analyze", 405, "method_not_allowed"),
    ("DELETE", "/", 405, "method_not_allowed"),
    ("PUT", "/health", 405, "method_not_allowed"),
])
def test_routes_and_methods(http_server: str, method: str, path: str, status: int, code: str) -> None:
    got, headers, raw = call(http_server + path, None, method)
    assert (got, json.loads(raw)["error"]["code"]) == (status, code)
    if status == 405:
        assert headers["Allow"]


def test_cors_preflight(http_server: str) -> None:
    status, headers, _ = call(http_server + "/analyze", None, "OPTIONS")
    assert status == 204 and headers["Access-Control-Allow-Origin"] == "*"


def _analyse(base: str, body: bytes) -> list[tuple]:
    status, _, raw = call(base + "/analyze?annotate=false", body, "POST", {"Content-Type": "application/octet-stream"})
    assert status == 200
    return faces_summary(json.loads(raw))


def test_concurrent_requests_equal_sequential(http_server: str, four_faces_jpeg: bytes) -> None:
    bodies = [fixture_bytes("camera.png"), fixture_bytes("astronaut.png"), four_faces_jpeg, fixture_bytes("coffee.png")]
    sequential = [_analyse(http_server, b) for b in bodies]
    jobs = [bodies[i % len(bodies)] for i in range(32)]
    with ThreadPoolExecutor(32) as pool:
        concurrent = list(pool.map(lambda body: _analyse(http_server, body), jobs))
    assert concurrent == [sequential[i % len(bodies)] for i in range(32)]


def test_request_threads_with_two_detector_threads_and_copies(http_server: str, four_faces_jpeg: bytes) -> None:
    # cv2.FaceDetectorYN is not thread-safe: request threads borrow pooled copies (NET_CLONES), and
    # OpenCV's 2-thread pool (DETECT_THREADS) serves them all; answers as one thread's, one copy's.
    bodies = [fixture_bytes("group6.jpg"), four_faces_jpeg, fixture_bytes("astronaut.png")]
    expected = [_analyse(http_server, b) for b in bodies]
    with functions_framework("http_analyze", env={"DETECT_THREADS": "2", "NET_CLONES": "2"}) as base:
        with ThreadPoolExecutor(12) as pool:
            got = list(pool.map(lambda body: _analyse(base, body), bodies * 4))
    assert got == expected * 4
