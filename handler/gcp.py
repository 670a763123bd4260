"""functions-framework targets (local emulation and Google Cloud Functions / Cloud Run).

- `http_analyze`: the HTTP routes (POST /analyze, GET /, GET /health), same contract as on AWS.
- `gcs_finalized`: CloudEvent target for `google.cloud.storage.object.v1.finalized`.

    functions-framework --source handler/gcp.py --target http_analyze
"""

from __future__ import annotations

import os
import sys
import threading
from typing import Any

# functions-framework loads this file by path, not as part of the package.
_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

import flask  # noqa: E402  (functions-framework depends on Flask)
import functions_framework  # noqa: E402

from handler.config import LAMBDA_PAYLOAD_LIMIT  # noqa: E402
from handler.http_api import HttpRequest, handle  # noqa: E402
from handler.logs import invocation, log  # noqa: E402
from handler.storage_trigger import ObjectInfo, ObjectMissing, process_object  # noqa: E402

FINALIZED = "google.cloud.storage.object.v1.finalized"
_gcs_client: Any = None
_gcs_lock = threading.Lock()


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
        ))
    return flask.Response(response.body, status=response.status, headers=response.headers)


def gcs_client() -> Any:
    """One google-cloud-storage client per process (honours STORAGE_EMULATOR_HOST)."""
    global _gcs_client
    if _gcs_client is None:
        with _gcs_lock:
            if _gcs_client is None:
                from google.cloud import storage

                if os.environ.get("STORAGE_EMULATOR_HOST"):
                    from google.auth.credentials import AnonymousCredentials

                    _gcs_client = storage.Client(project=os.environ.get("GOOGLE_CLOUD_PROJECT", "local"),
                                                 credentials=AnonymousCredentials())
                else:
                    _gcs_client = storage.Client()
    return _gcs_client


class GcsStore:
    """ObjectStore over google-cloud-storage."""

    def __init__(self, client: Any) -> None:
        self.client = client

    def head(self, bucket: str, key: str) -> ObjectInfo:
        blob = self.client.bucket(bucket).get_blob(key)
        if blob is None:
            raise ObjectMissing(key)
        return blob_info(blob)

    def get(self, bucket: str, key: str, version: str | None = None) -> bytes:
        from google.api_core.exceptions import NotFound

        try:
            generation = int(version) if version and version.isdigit() else None
            return self.client.bucket(bucket).blob(key, generation=generation).download_as_bytes()
        except NotFound:
            raise ObjectMissing(key) from None

    def put(self, bucket: str, key: str, body: bytes, content_type: str,
            metadata: dict[str, str] | None = None) -> None:
        blob = self.client.bucket(bucket).blob(key)
        if metadata:
            blob.metadata = metadata
        blob.upload_from_string(body, content_type=content_type)


def blob_info(blob: Any) -> ObjectInfo:
    """What a GCS object resource says: the generation plays the part of S3's version id."""
    return ObjectInfo(size=int(blob.size or 0), etag=blob.etag or None,
                      version=str(blob.generation) if blob.generation else None, metadata=dict(blob.metadata or {}))


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
