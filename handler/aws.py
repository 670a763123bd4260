"""AWS Lambda entry point: `handler.aws.lambda_handler`.

One handler for every event the function is wired to: API Gateway REST (v1)
and HTTP API (v2), Function URLs, S3 ObjectCreated notifications and the
scheduled warm-ping.
"""

from __future__ import annotations

import os
import threading
import time
import traceback
from typing import Any

from handler import runtime
from handler.aws_events import (
    FUNCTION_URL,
    HTTP_V1,
    HTTP_V2,
    S3,
    WARMUP,
    event_kind,
    http_event_response,
    http_request,
    s3_objects,
)
from handler.config import SETTINGS, Settings
from handler.errors import RequestError
from handler.http_api import error_response, handle
from handler.logs import invocation, log
from handler.storage_trigger import ObjectMissing, ObjectStore, process_object

ON_LAMBDA = bool(os.environ.get("AWS_LAMBDA_FUNCTION_NAME"))
_s3_client: Any = None
_s3_lock = threading.Lock()


def s3_client() -> Any:
    """One boto3 S3 client per process (boto3 comes with the Lambda runtime)."""
    global _s3_client
    if _s3_client is None:
        with _s3_lock:
            if _s3_client is None:
                import boto3
                from botocore.config import Config

                _s3_client = boto3.client("s3", endpoint_url=os.environ.get("AWS_ENDPOINT_URL_S3") or None,
                                          config=Config(retries={"mode": "standard", "max_attempts": 3}))
    return _s3_client


class S3Store:
    """ObjectStore over boto3's S3 client."""

    def __init__(self, client: Any) -> None:
        self.client = client

    def _missing(self, exc: Exception) -> bool:
        code = str(getattr(exc, "response", {}).get("Error", {}).get("Code", ""))
        return code in ("404", "NoSuchKey", "NotFound")

    def size(self, bucket: str, key: str) -> int:
        try:
            return int(self.client.head_object(Bucket=bucket, Key=key)["ContentLength"])
        except self.client.exceptions.ClientError as exc:
            if self._missing(exc):
                raise ObjectMissing(key) from None
            raise

    def get(self, bucket: str, key: str) -> bytes:
        try:
            return self.client.get_object(Bucket=bucket, Key=key)["Body"].read()
        except self.client.exceptions.ClientError as exc:
            if self._missing(exc):
                raise ObjectMissing(key) from None
            raise

    def put(self, bucket: str, key: str, body: bytes, content_type: str) -> None:
        self.client.put_object(Bucket=bucket, Key=key, Body=body, ContentType=content_type)


def handle_s3(event: dict, store: ObjectStore | None = None, settings: Settings = SETTINGS) -> dict:
    """Process every record; re-raise the first storage failure after trying them all, so Lambda retries."""
    store = store or S3Store(s3_client())
    results, failure = [], None
    for name, bucket, key in s3_objects(event):
        if not name.startswith("ObjectCreated:"):
            results.append({"key": key, "status": "skipped", "reason": "not_object_created"})
            continue
        try:
            results.append(process_object(store, bucket, key, settings))
        except Exception as exc:  # noqa: BLE001 - finish the other records, then fail the event
            log("object_failed", level=40, bucket=bucket, key=key[:300], error=type(exc).__name__,
                trace=traceback.format_exc(limit=5))
            results.append({"key": key, "status": "failed", "error": type(exc).__name__})
            failure = failure or exc
    if failure is not None:
        raise failure
    return {"records": results}


def lambda_handler(event: Any, context: Any) -> dict:
    """Dispatch one Lambda event by its shape."""
    t0 = time.perf_counter()
    kind = event_kind(event)
    cold = runtime.peek_cold_start()
    with invocation(getattr(context, "aws_request_id", None)):
        response = _dispatch(event, kind)
        log("invocation", kind=kind, cold_start=cold, status=response.get("statusCode"),
            ms=round((time.perf_counter() - t0) * 1000, 1))
    return response


def _dispatch(event: Any, kind: str) -> dict:
    if kind == WARMUP:
        response = {"warm": runtime.is_warm(), "cold_start": runtime.peek_cold_start()}
    elif kind in (HTTP_V1, HTTP_V2, FUNCTION_URL):
        try:
            response = http_event_response(handle(http_request(event, kind)))
        except RequestError as error:  # the envelope itself was bad (body encoding, size)
            response = http_event_response(error_response(error))
    elif kind == S3:
        response = handle_s3(event)
    else:
        keys = sorted(event)[:20] if isinstance(event, dict) else type(event).__name__
        log("unknown_event", level=30, keys=keys)
        response = {"error": {"code": "unknown_event",
                              "message": "unrecognised event shape; expected API Gateway, Function URL, "
                                         "S3 or a scheduled warm-up event"}}
    return response


def _register_snapstart_hooks() -> None:
    """Warm before the snapshot; after a restore, mark the next request cold and drop pooled connections."""
    try:
        from snapshot_restore_py import register_after_restore, register_before_snapshot
    except ImportError:
        return

    def before_snapshot() -> None:
        runtime.get_models()

    def after_restore() -> None:
        global _s3_client
        runtime.reset_after_restore()
        _s3_client = None  # sockets and credentials must not be shared across restored copies

    register_before_snapshot(before_snapshot)
    register_after_restore(after_restore)


if ON_LAMBDA:
    _register_snapstart_hooks()
    s3_client()  # in the init phase, so the first S3 event doesn't pay boto3's import
