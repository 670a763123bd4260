"""The storage contract over google-cloud-storage, and one client per process (honours STORAGE_EMULATOR_HOST).

Shared by the Cloud Storage trigger (gcp.py) and the Cloud Run job (gcs_job.py); imports no web framework.
"""

from __future__ import annotations

import os
import threading
from typing import Any

from handler.storage import ABSENT, ObjectInfo, ObjectMissing, PreconditionFailed

_gcs_client: Any = None
_gcs_lock = threading.Lock()


def gcs_client() -> Any:
    """One google-cloud-storage client per process (honours STORAGE_EMULATOR_HOST)."""
    global _gcs_client
    if _gcs_client is None:
        with _gcs_lock:
            if _gcs_client is None:
                # Since 3.x the library fetches each bucket's metadata in the background for its traces
                # (buckets.get: storage.buckets.get, which no object role holds, so a 403). We don't trace,
                # and the grants stay the object roles the flow needs (tests/unit/test_gcp_permissions.py).
                os.environ.setdefault("DISABLE_GCS_PYTHON_CLIENT_OTEL_BUCKET_METADATA", "true")
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
            metadata: dict[str, str] | None = None, *, only_if: ObjectInfo | None = None) -> None:
        from google.api_core.exceptions import PreconditionFailed as Lost

        blob = self.client.bucket(bucket).blob(key)
        if metadata:
            blob.metadata = metadata
        # Generation 0 means "no live object" (Cloud Storage, "Request preconditions").
        generation = None if only_if is None else 0 if only_if is ABSENT else int(only_if.version or 0)
        try:
            blob.upload_from_string(body, content_type=content_type, if_generation_match=generation)
        except Lost:
            raise PreconditionFailed(key) from None

    def delete(self, bucket: str, key: str) -> None:
        from google.api_core.exceptions import NotFound

        try:
            self.client.bucket(bucket).blob(key).delete()
        except NotFound:
            pass


def blob_info(blob: Any) -> ObjectInfo:
    """What a GCS object resource says: the generation plays the part of S3's version id."""
    return ObjectInfo(size=int(blob.size or 0), etag=blob.etag or None,
                      version=str(blob.generation) if blob.generation else None, metadata=dict(blob.metadata or {}))
