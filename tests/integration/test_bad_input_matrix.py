"""One bad-input matrix, run through every HTTP edge: the real functions-framework server and
`handler.aws.lambda_handler` with the real API Gateway v2, v1 and Function URL event samples.

Every case gets its documented status and error code; bad bodies carry a unique marker that must never
come back in the response or reach the logs; after the matrix the same server still answers correctly.
"""

from __future__ import annotations

import base64
import copy
import io
import json
import logging
import re
import uuid
from dataclasses import dataclass

import cv2
import numpy as np
import pytest
from crafted import animated_gif, cmyk_jpeg, with_exif_orientation, with_jpeg_comment
from helpers import fixture_bytes, fixture_image, jpeg, load_event, png, png_header_only
from http_client import call
from procfs import server_pids, status_kb
from servers import ROOT

from handler import aws
from handler.config import SETTINGS

MARK = f"zzMARK{uuid.uuid4().hex}zz"  # in every bad body; must never come back
MB = 1024 * 1024
B64 = base64.b64encode
TRANSPORTS = ["ff", "apigw_v2", "apigw_v1", "function_url"]
EVENT_FILES = {"apigw_v2": "apiGatewayProxyV2Event.json", "apigw_v1": "apiGatewayProxyEvent.json",
               "function_url": "lambdaFunctionUrlEvent.json"}
# A run of base64 this long in a log line can only be image data.
BASE64_RUN = re.compile(rb"[A-Za-z0-9+/=]{120,}")


@dataclass(frozen=True)
class Case:
    name: str
    body: bytes
    content_type: str
    status: int
    code: str | None = None  # error code for 4xx
    faces: int | None = None  # faces_detected for 200
    method: str = "POST"
    path: str = "/analyze"
    query: str = ""


def _json(payload: object) -> bytes:
    return json.dumps(payload).encode()


def _upright_and_rotated() -> tuple[np.ndarray, bytes, bytes]:
    """astronaut cropped to portrait 400x512 (w x h), stored rotated 90 degrees: (upright, JPEG with EXIF
    Orientation 6, the same JPEG without the tag)."""
    upright = fixture_image("astronaut.png")[:, 56:456]
    stored = jpeg(cv2.rotate(upright, cv2.ROTATE_90_COUNTERCLOCKWISE))  # Orientation 6: rotate 90 CW to display
    return upright, with_exif_orientation(stored, 6), stored


def _cases() -> list[Case]:
    mark = MARK.encode()
    astronaut = fixture_image("astronaut.png")
    truncated = with_jpeg_comment(jpeg(astronaut), mark)
    truncated = truncated[: len(truncated) // 2]
    bomb = png_header_only(40000, 40000) + mark
    over_6mb = b"\xff\xd8\xff\xfe\x00\x40" + mark + b"\x00" * (6 * MB)
    return [
        Case("empty body", b"", "application/json", 400, "empty_body"),
        Case("whitespace", b" \n\t ", "application/json", 400, "empty_body"),
        Case("invalid json", b'{"image": "' + mark, "application/json", 400, "invalid_json"),
        Case("json without image", _json({"picture": MARK}), "application/json", 400, "missing_field"),
        Case("non-string image", _json({"image": [MARK]}), "application/json", 400, "invalid_field"),
        Case("invalid base64", _json({"image": f"***{MARK}***"}), "application/json", 400, "invalid_base64"),
        Case("base64 of text", _json({"image": B64(b"not an image " + mark).decode()}), "application/json", 400,
             "invalid_image"),
        Case("raw text as image", b"not an image " + mark, "image/jpeg", 400, "invalid_image"),
        Case("truncated jpeg", truncated, "image/jpeg", 400, "invalid_image"),
        Case("png bomb 40000x40000", bomb, "image/png", 413, "too_many_pixels"),
        Case("png bomb as json", _json({"image": B64(bomb).decode()}), "application/json", 413, "too_many_pixels"),
        Case("heic", b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + mark, "image/heic", 415,
             "unsupported_media_type"),
        Case("over 6 MB raw", over_6mb, "image/jpeg", 413, "payload_too_large"),
        Case("wrong content type", b"image=" + mark, "text/plain", 415, "unsupported_media_type"),
        Case("form content type", b"image=" + mark, "application/x-www-form-urlencoded", 415,
             "unsupported_media_type"),
        Case("max_faces above MAX_FACES", _json({"image": B64(fixture_bytes("camera.png")).decode(),
                                                  "options": {"max_faces": SETTINGS.max_faces + 1}, "x": MARK}),
             "application/json", 400, "invalid_options"),
        Case("max_faces above MAX_FACES in query", b"\x89PNG" + mark, "image/png", 400, "invalid_options",
             query=f"max_faces={SETTINGS.max_faces + 1}"),
        Case("unknown option max_pixels", _json({"image": "aGk=", "options": {"max_pixels": 10**9}, "x": MARK}),
             "application/json", 400, "invalid_options"),
        Case("options not an object", _json({"image": "aGk=", "options": MARK}), "application/json", 400,
             "invalid_options"),
        Case("unknown route", mark, "application/json", 404, "not_found", path="/nope"),
        Case("unknown route GET", b"", "", 404, "not_found", method="GET", path="/analyze/extra"),
        Case("GET /analyze", b"", "", 405, "method_not_allowed", method="GET"),
        Case("PATCH /analyze", mark, "application/json", 405, "method_not_allowed", method="PATCH"),
        Case("DELETE /", b"", "", 405, "method_not_allowed", method="DELETE", path="/"),
        Case("PUT /health", mark, "application/json", 405, "method_not_allowed", method="PUT", path="/health"),
        # Odd but valid images: 200.
        Case("1x1 png", png(np.zeros((1, 1, 3), np.uint8)), "image/png", 200, faces=0),
        Case("16-bit png", png(astronaut.astype(np.uint16) * 257), "image/png", 200, faces=1),
        Case("grayscale png", png(cv2.cvtColor(fixture_image("camera.png"), cv2.COLOR_BGR2GRAY)), "image/png",
             200, faces=1),
        Case("rgba png", png(cv2.cvtColor(astronaut, cv2.COLOR_BGR2BGRA)), "image/png", 200, faces=1),
        Case("cmyk jpeg", cmyk_jpeg(astronaut), "image/jpeg", 200, faces=1),
        Case("animated gif (first frame)", animated_gif(mark), "image/gif", 200, faces=0),
        Case("cmyk jpeg as json", _json({"image": B64(cmyk_jpeg(astronaut)).decode()}), "application/json", 200,
             faces=1),
    ]


CASES = _cases()


# ---------------------------------------------------------------- transports: (status, headers, body bytes)

def via_ff(base: str, case: Case) -> tuple[int, dict, bytes]:
    headers = {"Content-Type": case.content_type} if case.content_type else {}
    url = base + case.path + (f"?{case.query}" if case.query else "")
    return call(url, case.body if case.method not in ("GET", "DELETE") else None, case.method, headers)


def lambda_event(transport: str, case: Case) -> dict:
    """The real event sample with this case's method, path, query, content type and body."""
    event = copy.deepcopy(load_event(EVENT_FILES[transport]))
    headers = {k: v for k, v in event["headers"].items() if k.lower() != "content-type"}
    if case.content_type:
        headers["Content-Type" if transport == "apigw_v1" else "content-type"] = case.content_type
    event["headers"] = headers
    as_text = case.content_type in ("application/json", "text/plain", "application/x-www-form-urlencoded", "")
    event["body"] = case.body.decode() if as_text else B64(case.body).decode()
    event["isBase64Encoded"] = not as_text
    if transport == "apigw_v1":
        event["multiValueHeaders"] = {k: [v] for k, v in headers.items()}
        event["httpMethod"], event["path"] = case.method, case.path
        query = dict(p.split("=", 1) for p in case.query.split("&")) if case.query else None
        event["queryStringParameters"] = query
        event["multiValueQueryStringParameters"] = {k: [v] for k, v in query.items()} if query else None
    else:
        event["rawPath"], event["rawQueryString"] = case.path, case.query
        event["requestContext"]["http"].update(method=case.method, path=case.path)
        if transport == "apigw_v2":
            event["routeKey"] = event["requestContext"]["routeKey"] = f"{case.method} {case.path}"
    return event


def via_lambda(transport: str, case: Case) -> tuple[int, dict, bytes]:
    response = aws.lambda_handler(lambda_event(transport, case), None)
    assert set(response) == {"statusCode", "headers", "body", "isBase64Encoded"}
    body = response["body"].encode()
    if response["isBase64Encoded"]:
        body = base64.b64decode(body)
    return response["statusCode"], response["headers"], body


def send(transport: str, base: str, case: Case) -> tuple[int, dict, bytes]:
    return via_ff(base, case) if transport == "ff" else via_lambda(transport, case)


@dataclass(frozen=True)
class MatrixRun:
    """Every case sent once through every transport, with what the `faceread` logger wrote meanwhile."""

    answers: dict[tuple[str, str], tuple[int, dict, bytes] | Exception]
    log: str


@pytest.fixture(scope="module")
def matrix(http_server: str) -> MatrixRun:
    """The whole matrix, sent once; the tests below read it, so none depends on test order."""
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    logger = logging.getLogger("faceread")
    logger.addHandler(handler)
    answers: dict[tuple[str, str], tuple[int, dict, bytes] | Exception] = {}
    try:
        for transport in TRANSPORTS:
            for case in CASES:
                try:
                    answers[transport, case.name] = send(transport, http_server, case)
                except Exception as exc:  # noqa: BLE001 - reported by that case's test, not by all of them
                    answers[transport, case.name] = exc
    finally:
        logger.removeHandler(handler)
    return MatrixRun(answers, buffer.getvalue())


def _check(case: Case, status: int, headers: dict, raw: bytes) -> dict:
    assert headers["Content-Type"] == "application/json", (case.name, status, raw[:200])
    payload = json.loads(raw)
    if case.status == 200:
        assert status == 200, (case.name, payload)
        assert payload["faces_detected"] == case.faces, case.name
    else:
        assert (status, payload["error"]["code"]) == (case.status, case.code), (case.name, payload)
        # An image over the request limit also names the limit and the way round it (docs/api.md, "Big photos").
        extra = {"limit_bytes", "upload_route"} if case.code == "payload_too_large" else set()
        assert set(payload) == {"error"} and set(payload["error"]) - extra == {"code", "message"}
        assert len(raw) < 1000
    assert MARK.encode() not in raw, f"{case.name}: the response echoes the request body"
    if status == 405:
        assert headers["Allow"]
    return payload


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_matrix(matrix: MatrixRun, transport: str, case: Case) -> None:
    answer = matrix.answers[transport, case.name]
    if isinstance(answer, Exception):
        raise answer
    _check(case, *answer)


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_exif_rotated_jpeg_is_analysed_upright(http_server: str, transport: str) -> None:
    upright, rotated, untagged = _upright_and_rotated()
    height, width = upright.shape[:2]
    assert width != height
    case = Case("exif", rotated, "image/jpeg", 200, faces=1)
    payload = _check(case, *send(transport, http_server, case))
    assert payload["image"] == {"width": width, "height": height, "analysis_scale": 1.0}  # upright, not as stored
    face = payload["faces"][0]
    assert face["analyzed"] and face["gender"]["value"] == "female"
    # Control: the same pixels without the tag are reported in the stored (landscape) orientation.
    bare = Case("no exif", untagged, "image/jpeg", 200)
    status, _, raw = send(transport, http_server, bare)
    assert status == 200 and json.loads(raw)["image"] == {"width": height, "height": width, "analysis_scale": 1.0}


def test_bomb_refused_before_allocation_ff(http_server: str) -> None:
    """The 40000x40000 PNG header costs no memory in the server's worker (refused from the header)."""
    _, workers = server_pids(http_server)
    case = next(c for c in CASES if c.name == "png bomb 40000x40000")
    before = {pid: status_kb(pid, "VmHWM") for pid in workers}
    status, _, raw = via_ff(http_server, case)
    assert (status, json.loads(raw)["error"]["code"]) == (413, "too_many_pixels")
    for pid, peak in before.items():  # 40000*40000*3 bytes would be 4.8 GB
        assert status_kb(pid, "VmHWM") - peak < 50 * 1024


def test_bomb_refused_before_allocation_lambda() -> None:
    case = next(c for c in CASES if c.name == "png bomb 40000x40000")
    event = lambda_event("apigw_v2", case)
    peak = status_kb("self", "VmHWM")
    response = aws.lambda_handler(event, None)
    assert response["statusCode"] == 413 and json.loads(response["body"])["error"]["code"] == "too_many_pixels"
    assert status_kb("self", "VmHWM") - peak < 50 * 1024


def test_logs_hold_no_image_data_or_bodies(http_server: str, matrix: MatrixRun) -> None:
    """After the whole matrix, neither the server's log nor the in-process logger saw request data."""
    in_process = matrix.log.encode()
    assert b'"request_rejected"' in in_process  # the capture works
    logs = {"lambda (in-process)": in_process}
    server_log = ROOT / "build" / f"ff-http_analyze-{http_server.rsplit(':', 1)[1]}.log"
    if server_log.is_file():
        logs["functions-framework stdout"] = server_log.read_bytes()
        assert b'"request_rejected"' in logs["functions-framework stdout"]
    fixture_runs = {B64(fixture_bytes(n))[1000:1060] for n in ("camera.png", "astronaut.png")}
    for name, text in logs.items():
        assert MARK.encode() not in text, f"{name} log contains a request body"
        assert not BASE64_RUN.search(text), f"{name} log contains a long base64 run"
        assert not any(run in text for run in fixture_runs), name
        assert b"\x89PNG" not in text and b"\xff\xd8\xff" not in text, name
        for line in text.splitlines():
            if line.startswith(b"{"):
                json.loads(line)  # one JSON object per line, nothing interleaved


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_same_server_still_answers_after_the_matrix(http_server: str, matrix: MatrixRun, transport: str) -> None:
    case = Case("good", fixture_bytes("camera.png"), "image/png", 200, faces=1)
    payload = _check(case, *send(transport, http_server, case))
    face = payload["faces"][0]
    assert face["analyzed"] and face["gender"]["value"] == "male"
    assert payload["annotated_jpeg_base64"]
