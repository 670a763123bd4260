"""AWS event shapes: recognise them and decode their wire format, once.

Hand-written rather than aws-lambda-powertools' event classes (28-79 ms of
import on the start-up path here, with its Logger); the rules follow theirs: header names are
case-insensitive, bodies may be base64, S3 keys are URL-encoded (`+` is a
space) and are decoded here so nothing downstream sees `My+Photo%C3%A9.jpg`.
"""

from __future__ import annotations

import base64
import binascii
from urllib.parse import parse_qsl, unquote_plus

from handler.config import LAMBDA_PAYLOAD_LIMIT
from handler.errors import PayloadTooLarge, RequestError
from handler.http_api import HttpRequest, HttpResponse

HTTP_V1, HTTP_V2, FUNCTION_URL, S3, WARMUP, UNKNOWN = (
    "apigw_rest_v1", "apigw_http_v2", "function_url", "s3", "warmup", "unknown")


def event_kind(event: object) -> str:
    """Classify an event by its shape."""
    if not isinstance(event, dict):
        return UNKNOWN
    if event.get("warmup") is True or (
            event.get("source") == "aws.events" and event.get("detail-type") == "Scheduled Event"):
        return WARMUP
    records = event.get("Records")
    if isinstance(records, list) and records and all(
            isinstance(r, dict) and r.get("eventSource") == "aws:s3" for r in records):
        return S3
    context = event.get("requestContext")
    if isinstance(context, dict):
        if "httpMethod" in event:
            return HTTP_V1
        if event.get("version") == "2.0" and isinstance(context.get("http"), dict):
            domain = str(context.get("domainName", ""))
            return FUNCTION_URL if ".lambda-url." in domain else HTTP_V2
    return UNKNOWN


def _body(event: dict) -> bytes:
    raw = event.get("body") or ""
    if not isinstance(raw, str):
        raise RequestError("the request body is not text", code="invalid_body")
    # Refuse before decoding: base64 grows data by 4/3.
    if len(raw) > LAMBDA_PAYLOAD_LIMIT * 4 // 3 + 4:
        raise PayloadTooLarge(f"the request body is larger than {LAMBDA_PAYLOAD_LIMIT:,} bytes")
    if event.get("isBase64Encoded"):
        try:
            return base64.b64decode(raw, validate=True)
        except (binascii.Error, ValueError):
            raise RequestError("the request body is not valid base64", code="invalid_base64") from None
    try:
        return raw.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:  # a lone surrogate (\ud800) from the event JSON
        raise RequestError("the request body is not valid text", code="invalid_body") from None


def _field(container: dict, name: str, kind: type, default: object) -> object:
    """container[name] if it has the expected JSON type, `default` if absent or null, else a 400."""
    value = container.get(name)
    if value is None:
        return default
    if not isinstance(value, kind):
        raise RequestError(f"malformed event: `{name}` is not a {kind.__name__}", code="invalid_event")
    return value


def _strip_stage(path: str, stage: object) -> str:
    # HTTP APIs with a named stage put it in rawPath: /prod/analyze.
    if isinstance(stage, str) and stage and stage != "$default" and path.startswith(f"/{stage}/"):
        return path[len(stage) + 1:]
    return path


def http_request(event: dict, kind: str) -> HttpRequest:
    """A transport-neutral request from an API Gateway v1/v2 or Function URL event."""
    # Field types are checked (a 400, not a crash): event_kind only vouched for the overall shape.
    headers = {str(k).lower(): str(v) for k, v in _field(event, "headers", dict, {}).items()}
    context = event["requestContext"]
    if kind == HTTP_V1:
        method, path = _field(event, "httpMethod", str, ""), _field(event, "path", str, "") or "/"
        query = {k: v for k, v in _field(event, "queryStringParameters", dict, {}).items() if isinstance(v, str)}
    else:
        http = context["http"]
        method = _field(http, "method", str, "")
        path = _field(event, "rawPath", str, "") or _field(http, "path", str, "") or "/"
        path = _strip_stage(path, context.get("stage"))
        query = dict(parse_qsl(_field(event, "rawQueryString", str, "")))
    return HttpRequest(method=method, path=path, headers=headers, query=query, body=_body(event))


def http_event_response(response: HttpResponse) -> dict:
    """The proxy-integration response dict (same keys for v1, v2 and Function URLs)."""
    if response.is_binary and response.body:
        return {"statusCode": response.status, "headers": response.headers,
                "body": base64.b64encode(response.body).decode(), "isBase64Encoded": True}
    return {"statusCode": response.status, "headers": response.headers,
            "body": response.body.decode("utf-8"), "isBase64Encoded": False}


def s3_objects(event: dict) -> list[tuple[str, str, str]]:
    """(event name, bucket, decoded key) per record."""
    def mapping(value: object) -> dict:  # a malformed record becomes an empty key (skipped), not a crash
        return value if isinstance(value, dict) else {}

    objects = []
    for record in event["Records"]:
        s3 = mapping(record.get("s3"))
        objects.append((str(record.get("eventName", "")),
                        str(mapping(s3.get("bucket")).get("name", "")),
                        unquote_plus(str(mapping(s3.get("object")).get("key", "")))))
    return objects
