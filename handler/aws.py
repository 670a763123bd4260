"""AWS Lambda entry point: `handler.aws.lambda_handler`.

One handler for every event the function is wired to: API Gateway REST (v1)
and HTTP API (v2), Function URLs, S3 ObjectCreated notifications (direct or
through SQS), S3 Batch Operations, Step Functions Distributed Map batches and
the scheduled warm-ping.
"""

from __future__ import annotations

import os
import threading
import time
from typing import Any

from handler import runtime
from handler.aws_events import (
    BATCH_OPERATIONS,
    FUNCTION_URL,
    HTTP_V1,
    HTTP_V2,
    MAP_BATCH,
    S3,
    SQS,
    WARMUP,
    ObjectRef,
    batch_job,
    batch_response,
    event_kind,
    http_event_response,
    http_request,
    is_s3_test_event,
    map_items,
    s3_records,
    sqs_bodies,
)
from handler.batch import batch_operations_result, compact, options_from_arguments, run_one
from handler.config import SETTINGS, Settings
from handler.errors import RequestError
from handler.http_api import error_response, handle
from handler.logs import invocation, log
from handler.options import Options
from handler.s3_store import S3Store
from handler.service import DEFAULT_OPTIONS
from handler.storage import ObjectStore
from handler.uploads import S3Uploads

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


def _run_refs(refs: list[ObjectRef], store: ObjectStore, settings: Settings,
              options: Options = DEFAULT_OPTIONS) -> list[tuple[dict, Exception | None]]:
    """(summary, storage failure or None) per object; events other than ObjectCreated are skipped."""
    done = []
    for ref in refs:
        if not ref.event_name.startswith("ObjectCreated:"):
            done.append(({"key": ref.key, "status": "skipped", "reason": "not_object_created"}, None))
        else:
            done.append(run_one(store, ref.bucket, ref.key, settings, source=ref.source, options=options))
    return done


def handle_s3(event: dict, store: ObjectStore | None = None, settings: Settings = SETTINGS) -> dict:
    """Process every record; re-raise the first storage failure after trying them all, so Lambda retries."""
    done = _run_refs(s3_records(event), store or S3Store(s3_client()), settings)
    failure = next((exc for _, exc in done if exc is not None), None)
    if failure is not None:
        raise failure
    return {"records": [summary for summary, _ in done]}


def handle_sqs(event: dict, store: ObjectStore | None = None, settings: Settings = SETTINGS) -> dict:
    """S3 notifications delivered through SQS, answered as a partial batch (ReportBatchItemFailures).

    A message whose object failed to store is reported and comes back after the visibility timeout;
    after maxReceiveCount receives the queue moves it to the dead-letter queue, where a person can see
    and redrive it. A message that is not an S3 notification goes the same way. S3's one-off
    s3:TestEvent is acknowledged.
    """
    store = store or S3Store(s3_client())
    failures = []
    for message_id, body in sqs_bodies(event):
        if body is not None and is_s3_test_event(body):
            log("s3_test_event", message_id=message_id)
            continue
        if body is None or event_kind(body) != S3:
            log("message_not_s3_event", level=30, message_id=message_id)
            failures.append(message_id)
            continue
        if any(exc is not None for _, exc in _run_refs(s3_records(body), store, settings)):
            failures.append(message_id)
    return {"batchItemFailures": [{"itemIdentifier": m} for m in failures]}


def handle_batch_operations(event: dict, store: ObjectStore | None = None, settings: Settings = SETTINGS) -> dict:
    """One S3 Batch Operations invocation: one result per task, with the codes S3 acts on.

    Succeeded (outputs written, or already current), PermanentFailure (a bad image, after its error
    JSON is written; a missing object; a key outside the input prefix), TemporaryFailure (throttling,
    5xx, timeouts: S3 retries the task).
    """
    store = store or S3Store(s3_client())
    job = batch_job(event)
    try:
        options = options_from_arguments(job.user_arguments)
    except RequestError as error:  # the whole job was created with bad arguments: no task can succeed
        log("invalid_user_arguments", level=30, job_id=job.job_id, code=error.code)
        return batch_response(job, [(t.ref, "PermanentFailure", f"{error.code}: {error.message}"[:240])
                                    for t in job.tasks])
    results = []
    for task in job.tasks:
        if not task.key or not task.bucket:
            results.append((task.ref, "PermanentFailure", "invalid_task"))
            continue
        summary, _ = run_one(store, task.bucket, task.key, settings, source=task.source, options=options)
        results.append((task.ref, *batch_operations_result(summary)))
    return batch_response(job, results)


class RetryableBatchError(Exception):
    """Some items of a Distributed Map batch hit throttling or a 5xx: the state machine retries the batch.

    The retry is cheap: items already written are skipped by the skip rule with one HEAD each.
    """


def handle_map_batch(event: dict, store: ObjectStore | None = None, settings: Settings = SETTINGS) -> dict:
    """A Distributed Map child's batch (ItemBatcher): per-item results, compact for the state's 256 KB.

    Bad images and missing objects are per-item results, not failures; a transient storage failure
    raises RetryableBatchError after the other items are done, for the state machine's Retry.
    """
    store = store or S3Store(s3_client())
    batch_input, refs = map_items(event)
    options = options_from_arguments(batch_input.get("options"))  # bad options fail every batch: RequestError
    done = _run_refs(refs, store, settings, options)
    transient = [s["key"] for s, exc in done if exc is not None and s.get("transient")]
    if transient:
        raise RetryableBatchError(f"{len(transient)} of {len(done)} items hit a transient storage failure")
    return {"results": [compact(summary) for summary, _ in done]}


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
            response = http_event_response(handle(http_request(event, kind), lambda: S3Uploads(s3_client())))
        except RequestError as error:  # the envelope itself was bad (body encoding, size)
            response = http_event_response(error_response(error))
    elif kind == S3:
        response = handle_s3(event)
    elif kind == SQS:
        response = handle_sqs(event)
    elif kind == BATCH_OPERATIONS:
        response = handle_batch_operations(event)
    elif kind == MAP_BATCH:
        response = handle_map_batch(event)
    else:
        keys = sorted(event)[:20] if isinstance(event, dict) else type(event).__name__
        log("unknown_event", level=30, keys=keys)
        response = {"error": {"code": "unknown_event",
                              "message": "unrecognised event shape; expected API Gateway, Function URL, S3, "
                                         "SQS, S3 Batch Operations, a Distributed Map batch or a "
                                         "scheduled warm-up event"}}
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
