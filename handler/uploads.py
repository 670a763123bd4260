"""POST /uploads and GET /uploads/<id>: photos too big for a request body go straight to the bucket.

A request body carries at most config.DIRECT_IMAGE_LIMIT bytes of image (Lambda's 6 MB payload, and API
Gateway's base64 of binary bodies). For a bigger photo the caller asks POST /uploads for a presigned
upload into INPUT_PREFIX of UPLOAD_BUCKET (S3: a presigned POST whose policy pins the key, the
Content-Type and a content-length-range; Cloud Storage: a V4 signed PUT URL with the Content-Type and
x-goog-content-length-range signed in). The upload trigger analyses it like any upload, and the caller
polls GET /uploads/<id> until the result is there. The key is ours (a random id), so a caller can
neither choose nor overwrite another caller's object.
"""

from __future__ import annotations

import functools
import json
import os
import re
import uuid
from datetime import timedelta
from typing import Any, Protocol

from handler.config import UPLOAD_EXPIRES_S, Settings
from handler.errors import RequestError
from handler.storage import ObjectMissing, ObjectStore
from handler.storage_trigger import output_keys

# What the decoders take and a phone sends; the trigger sniffs the bytes anyway.
UPLOAD_TYPES = frozenset({"image/jpeg", "image/png", "image/webp"})
_ID = re.compile(r"[0-9a-f]{32}")


class Presigner(Protocol):
    """The three calls the routes need from a cloud (S3Uploads, GcsUploads)."""

    def upload(self, bucket: str, key: str, content_type: str, max_bytes: int) -> dict:
        """{"method": "POST", "url", "fields"} (a form) or {"method": "PUT", "url", "headers"}."""

    def read(self, bucket: str, key: str) -> bytes | None:
        """An object's bytes, or None while it isn't there."""

    def download_url(self, bucket: str, key: str) -> str:
        """A presigned GET of an object."""


def upload_key(upload_id: str, settings: Settings) -> str:
    return f"{settings.input_prefix}http/{upload_id}"


def create(payload: dict, presigner: Presigner, settings: Settings) -> dict:
    """POST /uploads {"content_type": "image/jpeg", "bytes": N} (the parsed body; {} for none): a presigned
    upload and where its result appears."""
    content_type = payload.get("content_type", "image/jpeg")
    if content_type not in UPLOAD_TYPES:
        raise RequestError(f"`content_type` must be one of {', '.join(sorted(UPLOAD_TYPES))}",
                           code="unsupported_media_type", status=415)
    size = payload.get("bytes")
    if size is not None and (not isinstance(size, int) or isinstance(size, bool) or size < 1):
        raise RequestError("`bytes` must be a positive integer", code="invalid_field")
    if size is not None and size > settings.max_image_bytes:
        raise RequestError(f"the photo is {size:,} bytes; the limit is {settings.max_image_bytes:,}",
                           code="payload_too_large", status=413)
    upload_id = uuid.uuid4().hex
    key = upload_key(upload_id, settings)
    result_at = {"bucket": settings.output_bucket or settings.upload_bucket, "key": output_keys(key, settings)[1]}
    return {"id": upload_id, "key": key, "poll": f"/uploads/{upload_id}", "expires_in_s": UPLOAD_EXPIRES_S,
            "max_bytes": settings.max_image_bytes, "result": result_at,
            "upload": presigner.upload(settings.upload_bucket, key, content_type, settings.max_image_bytes)}


def result(upload_id: str, presigner: Presigner, settings: Settings) -> tuple[int, dict]:
    """GET /uploads/<id>: 202 while pending; 200 with the stored result (and a presigned URL of its image)."""
    if not _ID.fullmatch(upload_id):
        raise RequestError("no such upload id (32 hex digits, from POST /uploads)", code="not_found", status=404)
    bucket = settings.output_bucket or settings.upload_bucket
    stored = presigner.read(bucket, output_keys(upload_key(upload_id, settings), settings)[1])
    if stored is None:
        return 202, {"id": upload_id, "status": "pending"}
    found = json.loads(stored)
    if "error" in found:
        return 200, {"id": upload_id, "status": "error", "result": found}
    image = found.get("annotated_image") or found.get("redacted_image")
    extra = {"image_url": presigner.download_url(image["bucket"], image["key"])} if image else {}
    return 200, {"id": upload_id, "status": "done", "result": found, **extra}


def _read(store: ObjectStore, bucket: str, key: str) -> bytes | None:
    try:
        return store.get(bucket, key)
    except ObjectMissing:
        return None


class S3Uploads:
    """Presigned POST forms and GETs with the function's own credentials (they carry its permissions)."""

    def __init__(self, client: Any) -> None:
        self.client = client

    def upload(self, bucket: str, key: str, content_type: str, max_bytes: int) -> dict:
        form = self.client.generate_presigned_post(
            bucket, key, Fields={"Content-Type": content_type},
            Conditions=[{"Content-Type": content_type}, ["content-length-range", 1, max_bytes]],
            ExpiresIn=UPLOAD_EXPIRES_S)
        return {"method": "POST", "url": form["url"], "fields": form["fields"]}

    def read(self, bucket: str, key: str) -> bytes | None:
        from handler.s3_store import S3Store

        return _read(S3Store(self.client), bucket, key)

    def download_url(self, bucket: str, key: str) -> str:
        return self.client.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": key},
                                                  ExpiresIn=UPLOAD_EXPIRES_S)


@functools.cache
def _default_credentials() -> Any:
    import google.auth

    return google.auth.default(scopes=["https://www.googleapis.com/auth/cloud-platform"])[0]


class GcsUploads:
    """V4 signed URLs, signed as the process's own account (Application Default Credentials). With a key
    file (GOOGLE_APPLICATION_CREDENTIALS) the library signs locally; on Cloud Run the credentials have no key,
    so it signs through the IAM Credentials signBlob API (the account then needs iam.serviceAccounts.signBlob
    on itself: infra/README.md)."""

    def __init__(self, client: Any, credentials: Any = None) -> None:
        self.client, self.credentials = client, credentials  # credentials: the signer (default: ADC)

    def _sign(self, bucket: str, key: str, **how: Any) -> str:
        from google.auth.credentials import Signing

        credentials = self.credentials or _default_credentials()
        how["credentials"] = credentials
        if not isinstance(credentials, Signing):
            import google.auth.transport.requests

            if not credentials.valid:
                credentials.refresh(google.auth.transport.requests.Request())
            how |= {"service_account_email": credentials.service_account_email, "access_token": credentials.token}
        emulator = os.environ.get("STORAGE_EMULATOR_HOST")
        if emulator:
            how["api_access_endpoint"] = emulator if "://" in emulator else f"http://{emulator}"
        return self.client.bucket(bucket).blob(key).generate_signed_url(
            version="v4", expiration=timedelta(seconds=UPLOAD_EXPIRES_S), **how)

    def upload(self, bucket: str, key: str, content_type: str, max_bytes: int) -> dict:
        headers = {"Content-Type": content_type, "x-goog-content-length-range": f"1,{max_bytes}"}
        url = self._sign(bucket, key, method="PUT", content_type=content_type,
                         headers={"x-goog-content-length-range": headers["x-goog-content-length-range"]})
        return {"method": "PUT", "url": url, "headers": headers}

    def read(self, bucket: str, key: str) -> bytes | None:
        from handler.gcs_store import GcsStore

        return _read(GcsStore(self.client), bucket, key)

    def download_url(self, bucket: str, key: str) -> str:
        return self._sign(bucket, key, method="GET")
