"""The storage contract over boto3's S3 client (the client itself is the caller's: aws.py keeps one per process)."""

from __future__ import annotations

from typing import Any

from handler.storage import ABSENT, ObjectInfo, ObjectMissing, PreconditionFailed, clean_etag

# The error codes S3 answers for a key or version that is not there (HEAD says only "404").
_MISSING_CODES = ("404", "NoSuchKey", "NotFound", "NoSuchVersion")
# A conditional write that lost: 412, or 409 when another conditional write to the key was in flight
# (S3, "How to prevent object overwrites with conditional writes").
_LOST_CODES = ("PreconditionFailed", "ConditionalRequestConflict", "412", "409")


class S3Store:
    """ObjectStore over boto3's S3 client."""

    def __init__(self, client: Any) -> None:
        self.client = client

    @staticmethod
    def _code(exc: Exception) -> str:
        return str(getattr(exc, "response", {}).get("Error", {}).get("Code", ""))

    def _missing(self, exc: Exception) -> bool:
        return self._code(exc) in _MISSING_CODES

    def head(self, bucket: str, key: str) -> ObjectInfo:
        try:
            head = self.client.head_object(Bucket=bucket, Key=key)
        except self.client.exceptions.ClientError as exc:
            if self._missing(exc):
                raise ObjectMissing(key) from None
            raise
        version = head.get("VersionId")
        return ObjectInfo(size=int(head["ContentLength"]), etag=clean_etag(head.get("ETag")),
                          version=version if version and version != "null" else None,
                          metadata=dict(head.get("Metadata") or {}))

    def get(self, bucket: str, key: str, version: str | None = None) -> bytes:
        try:
            extra = {"VersionId": version} if version else {}
            return self.client.get_object(Bucket=bucket, Key=key, **extra)["Body"].read()
        except self.client.exceptions.ClientError as exc:
            if self._missing(exc):
                raise ObjectMissing(key) from None
            raise

    def put(self, bucket: str, key: str, body: bytes, content_type: str,
            metadata: dict[str, str] | None = None, *, only_if: ObjectInfo | None = None) -> None:
        condition = {}
        if only_if is ABSENT:
            condition = {"IfNoneMatch": "*"}
        elif only_if is not None:
            condition = {"IfMatch": f'"{only_if.etag}"'}
        try:
            self.client.put_object(Bucket=bucket, Key=key, Body=body, ContentType=content_type,
                                   Metadata=metadata or {}, **condition)
        except self.client.exceptions.ClientError as exc:
            if condition and (self._code(exc) in _LOST_CODES or (only_if is not ABSENT and self._missing(exc))):
                raise PreconditionFailed(key) from None
            raise

    def delete(self, bucket: str, key: str) -> None:
        self.client.delete_object(Bucket=bucket, Key=key)  # S3 answers 204 for a key that isn't there
