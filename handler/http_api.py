"""The HTTP routes, shared by every HTTP edge (API Gateway v1/v2, Function URLs, functions-framework).

Edges turn their request into an `HttpRequest` and an `HttpResponse` back into
their own shape; everything in between (routing, body parsing, limits, errors,
CORS) happens here, once.
"""

from __future__ import annotations

import base64
import binascii
import json
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from handler import options, runtime, uploads
from handler.config import DIRECT_IMAGE_LIMIT, LAMBDA_PAYLOAD_LIMIT, SETTINGS
from handler.errors import BodyTooLarge, RequestError, UnsupportedMediaType
from handler.logs import log
from handler.service import analyze_bytes, parse_options

PAGE = (Path(__file__).resolve().parent / "web" / "index.html").read_bytes()
ROUTES = {"/": ("GET",), "/analyze": ("POST",), "/health": ("GET",), "/uploads": ("POST",), "/uploads/{id}": ("GET",)}
# Response budget under Lambda's 6 MB limit, leaving room for headers and the JSON envelope.
RESPONSE_BUDGET = LAMBDA_PAYLOAD_LIMIT - 64 * 1024
# A result's JSON without the image is at most this much plus FACE_JSON per face (a face
# serialises to about 450 bytes), so the annotated JPEG's budget is known before the JSON is
# built, and the JSON is serialised once.
RESULT_JSON = 4096
FACE_JSON = 1024


@dataclass
class HttpRequest:
    """A transport-neutral HTTP request: header names lower-case, body as bytes."""

    method: str
    path: str
    headers: dict[str, str] = field(default_factory=dict)
    query: dict[str, str] = field(default_factory=dict)
    body: bytes = b""


@dataclass
class HttpResponse:
    """A transport-neutral HTTP response."""

    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def is_binary(self) -> bool:
        content_type = self.headers.get("Content-Type", "")
        return not (content_type.startswith("text/") or content_type.startswith("application/json"))


def json_response(status: int, payload: dict, headers: dict[str, str] | None = None) -> HttpResponse:
    """A JSON response with the CORS headers."""
    body = json.dumps(payload, separators=(",", ":")).encode()
    return HttpResponse(status, body, {"Content-Type": "application/json", **cors_headers(), **(headers or {})})


def error_response(error: RequestError) -> HttpResponse:
    """The JSON error body with the error's status."""
    return json_response(error.status, error.to_dict(), error.headers)


def cors_headers() -> dict[str, str]:
    if not SETTINGS.cors_allow_origin:
        return {}
    return {
        "Access-Control-Allow-Origin": SETTINGS.cors_allow_origin,
        "Access-Control-Allow-Methods": "GET, POST, OPTIONS",
        "Access-Control-Allow-Headers": "Content-Type, Accept",
        "Access-Control-Max-Age": "600",
    }


def normalise_path(path: str) -> str:
    """'/analyze/' -> '/analyze'; '' -> '/'."""
    return "/" + path.strip("/")


def _media_type(headers: dict[str, str]) -> str:
    return headers.get("content-type", "").split(";")[0].strip().lower()


def query_options(query: dict[str, str]) -> dict | None:
    """The table's options among the query parameters (`?annotate=1&max_faces=3`), read as text; others are ignored."""
    return options.from_text({name: query[name] for name in options.BY_NAME if name in query}) or None


def decode_base64_image(value: object) -> bytes:
    """Strict base64 (a `data:image/...;base64,` prefix and whitespace tolerated)."""
    if not isinstance(value, str):
        raise RequestError("field `image` must be a base64 string", code="invalid_field")
    if value.startswith("data:"):
        _, _, value = value.partition(",")
    if len(value) > LAMBDA_PAYLOAD_LIMIT * 4 // 3 + 4:
        raise BodyTooLarge("the image is too large", DIRECT_IMAGE_LIMIT)
    try:
        data = base64.b64decode("".join(value.split()), validate=True)
    except (binascii.Error, ValueError):
        raise RequestError("field `image` is not valid base64", code="invalid_base64") from None
    if len(data) > DIRECT_IMAGE_LIMIT:
        raise BodyTooLarge(f"the image is {len(data):,} bytes", DIRECT_IMAGE_LIMIT)
    return data


def json_object(body: bytes) -> dict:
    """A request body that must be a JSON object; RequestError `invalid_json` otherwise."""
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise RequestError("the request body is not valid JSON", code="invalid_json") from None
    if not isinstance(payload, dict):
        raise RequestError("the JSON body must be an object", code="invalid_json")
    return payload


def parse_analyze_body(request: HttpRequest) -> tuple[bytes, object]:
    """(image bytes, request options) from a JSON body or a raw image body."""
    if len(request.body) > LAMBDA_PAYLOAD_LIMIT:
        raise BodyTooLarge(f"the request body is over {LAMBDA_PAYLOAD_LIMIT:,} bytes", DIRECT_IMAGE_LIMIT)
    media_type = _media_type(request.headers)
    from_query = query_options(request.query)
    if media_type == "application/json" or (not media_type and request.body.lstrip()[:1] == b"{"):
        if not request.body.strip():
            raise RequestError("the request body is empty; send JSON {\"image\": \"<base64>\"} or an image",
                               code="empty_body")
        payload = json_object(request.body)
        if "image" not in payload:
            raise RequestError("the JSON body has no `image` field (base64 of the image)", code="missing_field")
        return decode_base64_image(payload["image"]), payload.get("options", from_query)
    if media_type.startswith("image/") or media_type in ("application/octet-stream", ""):
        if not request.body:
            raise RequestError("the request body is empty; send an image or JSON {\"image\": \"<base64>\"}",
                               code="empty_body")
        if len(request.body) > DIRECT_IMAGE_LIMIT:
            raise BodyTooLarge(f"the image is {len(request.body):,} bytes", DIRECT_IMAGE_LIMIT)
        return request.body, from_query
    raise UnsupportedMediaType("this Content-Type is not accepted; use application/json or image/*")


def _json_jpeg_budget(faces: int) -> int:
    """Bytes the annotated JPEG may take inside a JSON response (base64: 4 bytes per 3)."""
    return (RESPONSE_BUDGET - RESULT_JSON - FACE_JSON * faces) * 3 // 4


def _binary_jpeg_budget(_: int) -> int:
    """Bytes the annotated JPEG may take as the whole body (Lambda base64-encodes binary bodies)."""
    return RESPONSE_BUDGET * 3 // 4


def analyze_route(request: HttpRequest) -> HttpResponse:
    """POST /analyze: JSON result with the annotated (or redacted) image, or the JPEG itself for Accept: image/jpeg."""
    data, request_options = parse_analyze_body(request)
    options = parse_options(request_options)
    wants_jpeg = "image/jpeg" in request.headers.get("accept", "")
    if wants_jpeg and not (options.annotate or options.redact):
        raise RequestError("Accept: image/jpeg needs annotate=true", code="invalid_options")
    outcome = analyze_bytes(data, options, max_bytes=min(SETTINGS.max_image_bytes, DIRECT_IMAGE_LIMIT),
                            jpeg_budget=_binary_jpeg_budget if wants_jpeg else _json_jpeg_budget)
    result = outcome.result
    # A request gets one image: options.merged makes `output: "redacted"` replace the annotated one.
    kind, jpeg, scale = (("redacted", outcome.redacted_jpeg, outcome.redacted_scale) if options.redact
                         else ("annotated", outcome.annotated_jpeg, outcome.annotated_scale))
    log("analyzed", faces=result["faces_detected"], analyzed=result["faces_analyzed"],
        cold_start=result["cold_start"], timings_ms=result["timings_ms"])
    if wants_jpeg:
        return HttpResponse(200, jpeg, {"Content-Type": "image/jpeg", **cors_headers(),
                                        "X-Faces-Detected": str(result["faces_detected"]),
                                        f"X-{kind.capitalize()}-Scale": str(scale)})
    if jpeg is not None:
        result = {**result, f"{kind}_jpeg_base64": base64.b64encode(jpeg).decode(), f"{kind}_scale": scale}
    return json_response(200, result)


def health_route(_: HttpRequest) -> HttpResponse:
    """GET /health: readiness without running inference."""
    warm = runtime.is_warm()
    return json_response(200 if warm else 503, {
        "status": "ok" if warm else "loading",
        "warm": warm,
        "cold_start": runtime.peek_cold_start(),
        "models": runtime.get_models().ids if warm else {},
    })


def page_route(_: HttpRequest) -> HttpResponse:
    """GET /: the self-contained web page."""
    return HttpResponse(200, PAGE, {"Content-Type": "text/html; charset=utf-8", "Cache-Control": "no-cache"})


def _presigner(make: Callable[[], uploads.Presigner] | None) -> uploads.Presigner:
    if make is None or not SETTINGS.upload_bucket:
        raise RequestError("presigned uploads are not set up here (UPLOAD_BUCKET is unset); send photos up to "
                           f"{DIRECT_IMAGE_LIMIT:,} bytes to POST /analyze", code="uploads_not_configured", status=501)
    return make()


def uploads_route(request: HttpRequest, make: Callable[[], uploads.Presigner] | None) -> HttpResponse:
    """POST /uploads: a presigned upload for a photo too big for POST /analyze (handler/uploads.py)."""
    payload = json_object(request.body) if request.body.strip() else {}
    return json_response(201, uploads.create(payload, _presigner(make), SETTINGS))


def upload_result_route(request: HttpRequest, make: Callable[[], uploads.Presigner] | None) -> HttpResponse:
    """GET /uploads/<id>: 202 while the upload's analysis is pending, then 200 with its result."""
    status, payload = uploads.result(normalise_path(request.path).rsplit("/", 1)[1], _presigner(make), SETTINGS)
    return json_response(status, payload, {"Retry-After": "1"} if status == 202 else None)


_HANDLERS = {"/": page_route, "/analyze": analyze_route, "/health": health_route}
_UPLOAD_HANDLERS = {"/uploads": uploads_route, "/uploads/{id}": upload_result_route}


def _dispatch(path: str, request: HttpRequest, presigner: Callable[[], uploads.Presigner] | None) -> HttpResponse:
    if path in _UPLOAD_HANDLERS:
        return _UPLOAD_HANDLERS[path](request, presigner)
    return _HANDLERS[path](request)


def _route(path: str) -> str:
    """The route template a path falls under ('/uploads/ab12...' -> '/uploads/{id}')."""
    return "/uploads/{id}" if path.startswith("/uploads/") and path.count("/") == 2 else path


def handle(request: HttpRequest, presigner: Callable[[], uploads.Presigner] | None = None) -> HttpResponse:
    """Route one request; never raises: client errors are 4xx JSON, anything else a logged 500.

    `presigner` makes the cloud's presigner for the upload routes (the edge's storage client).
    """
    path, method = _route(normalise_path(request.path)), request.method.upper()
    try:
        if path not in ROUTES:
            raise RequestError("no such route; routes: POST /analyze, POST /uploads, GET /uploads/<id>, GET /, "
                               "GET /health", code="not_found", status=404)
        if method == "OPTIONS":
            return HttpResponse(204, b"", cors_headers())
        if method == "HEAD" and "GET" in ROUTES[path]:
            response = _dispatch(path, request, presigner)
            return HttpResponse(response.status, b"", response.headers)
        if method not in ROUTES[path]:
            allowed = ", ".join(ROUTES[path])
            raise RequestError(f"this method is not allowed on {path}; use {allowed}",
                               code="method_not_allowed", status=405, headers={"Allow": allowed})
        return _dispatch(path, request, presigner)
    except RequestError as error:
        log("request_rejected", code=error.code, status=error.status, path=path[:100], method=method[:10])
        return error_response(error)
    except Exception as exc:  # noqa: BLE001 - the last line of defence: a JSON 500, never a stack trace
        log("internal_error", level=40, error=type(exc).__name__, trace=traceback.format_exc(limit=8))
        return json_response(500, {"error": {"code": "internal_error",
                                             "message": "internal error; the request was logged"}})
