"""AWS event shapes: recognise them and decode their wire format, once.

HTTP (API Gateway v1/v2, Function URLs), S3 notifications (direct or wrapped in SQS messages),
S3 Batch Operations tasks (invocation schema 1.0 and 2.0), Step Functions Distributed Map
batches (`Items` + `BatchInput`) and the warm-ping.

Hand-written rather than aws-lambda-powertools' event classes (28-79 ms of
import on the start-up path here, with its Logger); the rules follow theirs: header names are
case-insensitive, bodies may be base64, S3 keys are URL-encoded (`+` is a
space) and are decoded here so nothing downstream sees `My+Photo%C3%A9.jpg`.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, unquote_plus

from handler.config import DIRECT_IMAGE_LIMIT, LAMBDA_PAYLOAD_LIMIT
from handler.errors import BodyTooLarge, RequestError
from handler.http_api import HttpRequest, HttpResponse
from handler.storage import ObjectInfo, clean_etag

HTTP_V1, HTTP_V2, FUNCTION_URL, S3, WARMUP, UNKNOWN = (
    "apigw_rest_v1", "apigw_http_v2", "function_url", "s3", "warmup", "unknown")
BATCH_OPERATIONS, SQS, MAP_BATCH = "s3_batch_operations", "sqs", "distributed_map_batch"


def event_kind(event: object) -> str:
    """Classify an event by its shape."""
    if not isinstance(event, dict):
        return UNKNOWN
    if event.get("warmup") is True or (
            event.get("source") == "aws.events" and event.get("detail-type") == "Scheduled Event"):
        return WARMUP
    records = event.get("Records")
    if isinstance(records, list) and records and all(isinstance(r, dict) for r in records):
        sources = {str(r.get("eventSource")) for r in records}
        if sources == {"aws:s3"}:
            return S3
        if sources == {"aws:sqs"}:
            return SQS
    if isinstance(event.get("invocationSchemaVersion"), str) and isinstance(event.get("tasks"), list):
        return BATCH_OPERATIONS
    if isinstance(event.get("Items"), list):
        return MAP_BATCH
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
        raise BodyTooLarge(f"the request body is over {LAMBDA_PAYLOAD_LIMIT:,} bytes", DIRECT_IMAGE_LIMIT)
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


def _mapping(value: object) -> dict:
    """A malformed part becomes an empty dict (its key is empty, so it is skipped), never a crash."""
    return value if isinstance(value, dict) else {}


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


@dataclass(frozen=True)
class ObjectRef:
    """One object to process, from any event shape: key decoded, plus what the event says about it."""

    ref: str  # taskId, SQS messageId or the item's index: what the answer names
    bucket: str
    key: str
    source: ObjectInfo = field(default_factory=ObjectInfo)
    event_name: str = "ObjectCreated:"


def s3_records(event: dict) -> list[ObjectRef]:
    """Every record of an S3 notification, key URL-decoded, with its size, ETag and version."""
    refs = []
    for i, record in enumerate(event["Records"]):
        record = _mapping(record)
        s3 = _mapping(record.get("s3"))
        obj = _mapping(s3.get("object"))
        size = obj.get("size")
        refs.append(ObjectRef(
            ref=str(i), bucket=str(_mapping(s3.get("bucket")).get("name", "")),
            key=unquote_plus(str(obj.get("key", ""))),
            source=ObjectInfo(size=size if isinstance(size, int) and not isinstance(size, bool) else None,
                              etag=clean_etag(_text(obj.get("eTag"))), version=_text(obj.get("versionId"))),
            event_name=str(record.get("eventName", ""))))
    return refs


def s3_objects(event: dict) -> list[tuple[str, str, str]]:
    """(event name, bucket, decoded key) per record."""
    return [(r.event_name, r.bucket, r.key) for r in s3_records(event)]


def sqs_bodies(event: dict) -> list[tuple[str, dict | None]]:
    """(messageId, the body parsed as a JSON object, or None if it isn't one) per SQS message."""
    messages = []
    for record in event["Records"]:
        message_id = str(record.get("messageId", ""))
        try:
            body = json.loads(record.get("body") or "")
        except (TypeError, ValueError):
            body = None
        messages.append((message_id, body if isinstance(body, dict) else None))
    return messages


def is_s3_test_event(body: dict) -> bool:
    """The one-off message S3 sends when a notification to SQS is configured: nothing to process."""
    return body.get("Event") == "s3:TestEvent" and body.get("Service") == "Amazon S3"


def bucket_from_arn(arn: str) -> str:
    # Bucket names never contain ":"; this reads both arn:aws:s3:::name and the older docs' sample form.
    return arn.rsplit(":", 1)[-1]


@dataclass(frozen=True)
class BatchJob:
    """An S3 Batch Operations invocation (schema 1.0 or 2.0)."""

    schema: str
    invocation_id: str
    job_id: str
    user_arguments: dict[str, str]
    tasks: list[ObjectRef]


def batch_job(event: dict) -> BatchJob:
    """Parse a Batch Operations invocation. Keys arrive URL-encoded (`unquote_plus`, as powertools does).

    Schema 1.0 names the bucket by `s3BucketArn`; 2.0 by `s3Bucket` and adds `job.userArguments`
    (a string-to-string map). A task without a key or bucket gets an empty key, which the
    caller answers as a permanent failure.
    """
    job = _mapping(event.get("job"))
    tasks = []
    for task in event["tasks"]:
        task = _mapping(task)
        bucket = _text(task.get("s3Bucket")) or bucket_from_arn(_text(task.get("s3BucketArn")) or "")
        tasks.append(ObjectRef(ref=str(task.get("taskId", "")), bucket=bucket,
                               key=unquote_plus(_text(task.get("s3Key")) or ""),
                               source=ObjectInfo(version=_text(task.get("s3VersionId")))))
    arguments = {str(k): str(v) for k, v in _mapping(job.get("userArguments")).items()}
    return BatchJob(schema=event["invocationSchemaVersion"], invocation_id=str(event.get("invocationId", "")),
                    job_id=str(job.get("id", "")), user_arguments=arguments, tasks=tasks)


def batch_response(job: BatchJob, results: list[tuple[str, str, str]]) -> dict:
    """The answer Batch Operations expects: ids copied back, one (taskId, resultCode, resultString) per task."""
    return {"invocationSchemaVersion": job.schema, "treatMissingKeysAs": "PermanentFailure",
            "invocationId": job.invocation_id,
            "results": [{"taskId": t, "resultCode": c, "resultString": s} for t, c, s in results]}


def map_items(event: dict) -> tuple[dict, list[ObjectRef]]:
    """(BatchInput, items) of a Distributed Map child's batch.

    Items from the ItemReader's listObjectsV2 carry `Key` (not URL-encoded), `Etag` (so spelt) and `Size`;
    the bucket comes from an item's `Bucket` or from BatchInput's `bucket`.
    """
    batch_input = _mapping(event.get("BatchInput"))
    default_bucket = _text(batch_input.get("bucket")) or ""
    refs = []
    for i, item in enumerate(event["Items"]):
        item = _mapping(item)
        size = item.get("Size")
        refs.append(ObjectRef(
            ref=str(i), bucket=_text(item.get("Bucket")) or default_bucket, key=_text(item.get("Key")) or "",
            source=ObjectInfo(size=size if isinstance(size, int) and not isinstance(size, bool) else None,
                              etag=clean_etag(_text(item.get("ETag") or item.get("Etag"))),
                              version=_text(item.get("VersionId")))))
    return batch_input, refs
