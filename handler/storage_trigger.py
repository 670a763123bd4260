"""Upload-triggered analysis, shared by S3 and Cloud Storage.

For one uploaded object: skip it if it is one of our outputs (the recursive-loop
guard), check its size before download, analyse it, then write the annotated
image and, last, the JSON result: the JSON is the commit marker, so a reader
never sees a result without its image. Output keys are derived from the input
key, and stored results carry no timings, so a repeated event (delivery is
at-least-once) overwrites the outputs with identical bytes.

A bad image writes a JSON error result and returns normally: retrying can't fix
it. Storage failures propagate, so the platform retries the event.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from typing import Protocol

from handler.config import SETTINGS, Settings
from handler.errors import RequestError
from handler.logs import log
from handler.service import DEFAULT_OPTIONS, analyze_bytes

MAX_KEY_BYTES = 1024  # both S3 and Cloud Storage cap object names at 1024 UTF-8 bytes


class ObjectMissing(Exception):
    """The object no longer exists (deleted after the event was sent)."""


class ObjectStore(Protocol):
    """The three storage calls the trigger needs; adapters live in aws.py and gcp.py."""

    def size(self, bucket: str, key: str) -> int:
        """Object size in bytes; raise ObjectMissing if it is gone."""

    def get(self, bucket: str, key: str) -> bytes:
        """Object bytes; raise ObjectMissing if it is gone."""

    def put(self, bucket: str, key: str, body: bytes, content_type: str) -> None:
        """Write (overwrite) an object."""


def output_keys(key: str, settings: Settings = SETTINGS) -> tuple[str, str]:
    """(annotated image key, JSON key) for an input key, deterministic and within the key limit."""
    relative = key[len(settings.input_prefix):] if key.startswith(settings.input_prefix) else key
    base = settings.output_prefix + relative
    if len((base + ".annotated.jpg").encode()) > MAX_KEY_BYTES:
        base = settings.output_prefix + "long-keys/" + hashlib.sha256(key.encode()).hexdigest()
    return base + ".annotated.jpg", base + ".json"


def redacted_key(image_key: str) -> str:
    """The redacted image's key, beside the annotated one (one byte shorter, so within the key limit too)."""
    return image_key.removesuffix(".annotated.jpg") + ".redacted.jpg"


def skip_reason(bucket: str, key: str, settings: Settings = SETTINGS) -> str | None:
    """Why an object must not be processed, or None. Our own outputs never re-trigger us."""
    if settings.output_bucket and bucket == settings.output_bucket:
        return "output_bucket"
    if key.startswith(settings.output_prefix):
        return "output_prefix"
    if settings.input_prefix and not key.startswith(settings.input_prefix):
        return "outside_input_prefix"
    if key.endswith("/"):
        return "folder_placeholder"
    return None


def _json_bytes(payload: dict) -> bytes:
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def process_object(store: ObjectStore, bucket: str, key: str, settings: Settings = SETTINGS) -> dict:
    """Analyse one uploaded object and write its outputs; returns a summary for logs."""
    reason = skip_reason(bucket, key, settings)
    if reason:
        log("object_skipped", bucket=bucket, key=key[:300], reason=reason)
        return {"key": key, "status": "skipped", "reason": reason}
    out_bucket = settings.output_bucket or bucket
    image_key, json_key = output_keys(key, settings)
    source = {"bucket": bucket, "key": key}
    try:
        size = store.size(bucket, key)
        source["bytes"] = size
        if size > settings.max_image_bytes:
            raise RequestError(f"the object is {size:,} bytes; the limit is {settings.max_image_bytes:,}",
                               code="payload_too_large", status=413)
        options = dataclasses.replace(DEFAULT_OPTIONS, redact=settings.write_redacted)
        outcome = analyze_bytes(store.get(bucket, key), options, max_bytes=settings.max_image_bytes)
    except ObjectMissing:
        log("object_skipped", bucket=bucket, key=key[:300], reason="object_missing")
        return {"key": key, "status": "skipped", "reason": "object_missing"}
    except RequestError as error:
        store.put(out_bucket, json_key, _json_bytes({"input": source, **error.to_dict()}), "application/json")
        log("object_rejected", bucket=bucket, key=key[:300], code=error.code)
        return {"key": key, "status": "error", "code": error.code, "result": json_key}
    result = {k: v for k, v in outcome.result.items() if k not in ("timings_ms", "cold_start")}
    store.put(out_bucket, image_key, outcome.annotated_jpeg, "image/jpeg")
    images = {"annotated_image": {"bucket": out_bucket, "key": image_key}}
    if outcome.redacted_jpeg is not None:
        store.put(out_bucket, redacted_key(image_key), outcome.redacted_jpeg, "image/jpeg")
        images["redacted_image"] = {"bucket": out_bucket, "key": redacted_key(image_key)}
    result = {"input": source, **images, **result}
    store.put(out_bucket, json_key, _json_bytes(result), "application/json")
    log("object_analyzed", bucket=bucket, key=key[:300], faces=result["faces_detected"],
        cold_start=outcome.result["cold_start"], timings_ms=outcome.result["timings_ms"])
    return {"key": key, "status": "analyzed", "faces": result["faces_detected"], "result": json_key}
