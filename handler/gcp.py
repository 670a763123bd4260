"""functions-framework targets (local emulation and Google Cloud Functions / Cloud Run).

- `http_analyze`: the HTTP routes (POST /analyze, GET /, GET /health), same contract as on AWS.
- `gcs_finalized`: CloudEvent target for `google.cloud.storage.object.v1.finalized`.

    functions-framework --source handler/gcp.py --target http_analyze
"""

from __future__ import annotations

import os
import sys
from typing import Any

# functions-framework loads this file by path, not as part of the package.
_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

import flask  # noqa: E402  (functions-framework depends on Flask)
import functions_framework  # noqa: E402

from handler.config import LAMBDA_PAYLOAD_LIMIT  # noqa: E402
from handler.gcs_store import GcsStore, blob_info, gcs_client  # noqa: E402,F401 - blob_info re-exported
from handler.http_api import HttpRequest, handle  # noqa: E402
from handler.logs import invocation, log  # noqa: E402
from handler.storage import ObjectInfo  # noqa: E402
from handler.storage_trigger import process_object  # noqa: E402
from handler.uploads import GcsUploads  # noqa: E402

FINALIZED = "google.cloud.storage.object.v1.finalized"


@functions_framework.http
def http_analyze(request: flask.Request) -> flask.Response:
    """Serve the HTTP routes through the shared dispatcher."""
    with invocation(request.headers.get("Function-Execution-Id")):
        response = handle(HttpRequest(
            method=request.method,
            path=request.path,
            headers={k.lower(): v for k, v in request.headers.items()},
            query=request.args.to_dict(),
            # Never buffer more than the limit: one byte over is enough for the 413.
            body=request.stream.read(LAMBDA_PAYLOAD_LIMIT + 1),
        ), lambda: GcsUploads(gcs_client()))
    return flask.Response(response.body, status=response.status, headers=response.headers)


def event_info(data: dict) -> ObjectInfo:
    """The same facts from a finalized event's StorageObjectData (numbers arrive as strings)."""
    size, generation = str(data.get("size", "")), str(data.get("generation", ""))
    return ObjectInfo(size=int(size) if size.isdigit() else None, etag=str(data.get("etag") or "") or None,
                      version=generation if generation.isdigit() else None)


@functions_framework.cloud_event
def gcs_finalized(cloud_event: Any) -> None:
    """Analyse an uploaded Cloud Storage object; storage errors raise so the event is retried."""
    data = cloud_event.data or {}
    if cloud_event["type"] != FINALIZED:
        log("event_skipped", type=str(cloud_event["type"])[:100])
        return
    bucket, name = str(data.get("bucket", "")), str(data.get("name", ""))
    with invocation(str(cloud_event["id"])):
        process_object(GcsStore(gcs_client()), bucket, name, source=event_info(data))
