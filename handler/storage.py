"""The storage contract every storage path shares: the object facts, the store protocol and the ETag rule.

A low floor on purpose: the event decoders, the per-object flow, the adapters (s3_store.py,
gcs_store.py), the jobs and the operator's tools all import it, and it imports nothing of ours.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

MAX_KEY_BYTES = 1024  # both S3 and Cloud Storage cap object names at 1024 UTF-8 bytes


class ObjectMissing(Exception):
    """The object no longer exists (deleted after the event was sent)."""


class PreconditionFailed(Exception):
    """A conditional write lost: the object changed since it was read (S3 412/409, Cloud Storage 412)."""


@dataclass(frozen=True)
class ObjectInfo:
    """What a HEAD, a listing or an event says about an object; None where the source didn't say."""

    size: int | None = None
    etag: str | None = None  # without quotes
    version: str | None = None  # S3 VersionId or GCS generation
    metadata: dict[str, str] = field(default_factory=dict)

    @property
    def complete(self) -> bool:
        return self.size is not None and bool(self.etag)


class ObjectStore(Protocol):
    """The storage calls the flow needs; adapters live in s3_store.py and gcs_store.py."""

    def head(self, bucket: str, key: str) -> ObjectInfo:
        """Size, ETag, version and custom metadata; raise ObjectMissing if it is gone."""

    def get(self, bucket: str, key: str, version: str | None = None) -> bytes:
        """Object bytes (of `version` when given); raise ObjectMissing if it is gone."""

    def put(self, bucket: str, key: str, body: bytes, content_type: str,
            metadata: dict[str, str] | None = None, *, only_if: ObjectInfo | None = None) -> None:
        """Write (overwrite) an object; with `only_if`, only while it is still that object (ABSENT: while
        there is none), else raise PreconditionFailed (S3 If-Match / If-None-Match, GCS ifGenerationMatch)."""

    def delete(self, bucket: str, key: str) -> None:
        """Remove an object; an object already gone is not an error."""


# A write precondition: the object must not exist yet.
ABSENT = ObjectInfo()


def clean_etag(etag: object) -> str | None:
    """An ETag without its quotes (S3 quotes them in HEAD answers, not in events or listings)."""
    return str(etag).strip('"') or None if etag else None
