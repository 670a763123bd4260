"""The per-object flow shared by every storage path: S3 and Cloud Storage uploads, SQS-wrapped
uploads, S3 Batch Operations, Step Functions Distributed Map, Cloud Run jobs and local backfills.

For one object: skip it if it is one of our outputs (the recursive-loop guard); skip it if its
result already records the same source (ETag or version) and the same analysis fingerprint (model
ids and options) - the skip rule, one HEAD of the result and no inference; else check its size
before download, analyse it, then write the annotated image and, last, the JSON result with the
skip rule's facts as object metadata.

The layout that keeps a result whole under overwrite (docs/decisions.md): the images' keys carry a
token of the source version and the analysis (`photo.jpg.annotated.<token>.jpg`), and the JSON at a
fixed key is the pointer and the commit: written only if it is still the result read at the start
(S3 If-Match / If-None-Match, GCS ifGenerationMatch) and only while the source is still the version
analysed. A JSON therefore never names another analysis's image, and an older version's analysis
never replaces a newer one's result. The images a replaced JSON named are deleted after the commit.
Output keys are derived from the input key, and stored results carry no timings, so a repeated
event (delivery is at-least-once) rewrites identical bytes.

A bad image writes a JSON error result and returns normally: retrying can't fix it. Storage
failures propagate, so the platform retries the event.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import asdict

from handler import facts, runtime
from handler.config import SETTINGS, Settings
from handler.errors import RequestError
from handler.facts import META_AGES, META_FACES, META_GENDERS  # noqa: F401 - the result's metadata names, as before
from handler.logs import log
from handler.options import Options
from handler.service import DEFAULT_OPTIONS, analyze_bytes
from handler.storage import (  # noqa: F401 - re-exported: the flow's callers name them here
    ABSENT,
    MAX_KEY_BYTES,
    ObjectInfo,
    ObjectMissing,
    ObjectStore,
    PreconditionFailed,
    clean_etag,
)

# Object metadata on the JSON result (S3 `x-amz-meta-*`, GCS custom metadata): lower-case ASCII.
# The job facts ride along (handler.facts), so a job summary counts genders and age buckets of
# unchanged objects without reading their JSON.
META_ETAG, META_VERSION, META_ANALYSIS, META_ERROR = (
    "faceread-source-etag", "faceread-source-version", "faceread-analysis", "faceread-error")
META_TOKEN = "faceread-image-token"  # the token of the images this JSON names (deleted when it is replaced)
TOKEN_CHARS = 8  # hex digits of the image keys' token: it only tells versions of one key apart
COMMIT_TRIES = 5  # conditional JSON writes lost to other writers of the same key before giving up (the event retries)


def output_keys(key: str, settings: Settings = SETTINGS, token: str = "0" * TOKEN_CHARS) -> tuple[str, str]:
    """(annotated image key, JSON key) for an input key and an image token, deterministic and within the key limit."""
    relative = key[len(settings.input_prefix):] if key.startswith(settings.input_prefix) else key
    base = settings.output_prefix + relative
    if len(_image_key(base, token).encode()) > MAX_KEY_BYTES:
        base = settings.output_prefix + "long-keys/" + hashlib.sha256(key.encode()).hexdigest()
    return _image_key(base, token), base + ".json"


def _image_key(base: str, token: str) -> str:
    """The annotated image's key beside the result `base + ".json"` (the one place its name is formed)."""
    return f"{base}.annotated.{token}.jpg"


def redacted_key(image_key: str) -> str:
    """The redacted image's key, beside the annotated one (one byte shorter, so within the key limit too)."""
    head, _, tail = image_key.rpartition(".annotated.")  # the last one: a folder may hold the word too
    return f"{head}.redacted.{tail}"


def image_token(source: ObjectInfo, fingerprint: str) -> str:
    """The images' key token: one per source version and analysis, so concurrent writers of the same
    version write the same bytes to the same key and writers of different versions never share one."""
    return hashlib.sha256(f"{source.version}|{source.etag}|{fingerprint}".encode()).hexdigest()[:TOKEN_CHARS]


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


def analysis_fingerprint(options: Options = DEFAULT_OPTIONS, settings: Settings = SETTINGS) -> str:
    """16 hex digits naming what produced a result: every net's id, the options, the JPEG quality.

    A result with another fingerprint was made by other models or options and is redone.
    """
    facts = {"models": runtime.get_models().ids, "options": asdict(options), "jpeg_quality": settings.jpeg_quality}
    return hashlib.sha256(json.dumps(facts, sort_keys=True).encode()).hexdigest()[:16]


def is_current(result: ObjectInfo, source: ObjectInfo, fingerprint: str) -> bool:
    """The skip rule: the stored result was made from these source bytes with this analysis."""
    meta = result.metadata
    if meta.get(META_ANALYSIS) != fingerprint:
        return False
    same_version = bool(source.version) and meta.get(META_VERSION) == source.version
    same_etag = bool(source.etag) and meta.get(META_ETAG) == source.etag
    return same_version or same_etag


def _json_bytes(payload: dict) -> bytes:
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _stored(store: ObjectStore, bucket: str, json_key: str) -> ObjectInfo:
    """The result as it stands (one HEAD); ABSENT when there is none."""
    try:
        return store.head(bucket, json_key)
    except ObjectMissing:
        return ABSENT


def _unchanged(stored: ObjectInfo, json_key: str, source: ObjectInfo, fingerprint: str) -> dict | None:
    """The summary of a current result, or None when the object must be (re)analysed."""
    if stored is ABSENT or not is_current(stored, source, fingerprint):
        return None
    meta = stored.metadata
    return {"status": "unchanged", "result": json_key,
            **({"code": meta[META_ERROR]} if META_ERROR in meta else facts.from_metadata(meta))}


def _source_changed(store: ObjectStore, bucket: str, key: str, source: ObjectInfo) -> str | None:
    """None while the object is still the version that was analysed, else why not."""
    try:
        now = store.head(bucket, key)
    except ObjectMissing:
        return "object_missing"
    if source.version and now.version:
        return None if now.version == source.version else "superseded"
    return None if now.etag == source.etag else "superseded"


def _delete_images(store: ObjectStore, bucket: str, json_key: str, token: str | None, keep: str) -> None:
    """Delete the images of `token` (both kinds: a delete of a key that isn't there is not an error)."""
    if token and token != keep:
        image_key = _image_key(json_key.removesuffix(".json"), token)
        for image in (image_key, redacted_key(image_key)):
            store.delete(bucket, image)


def _commit(store: ObjectStore, bucket: str, key: str, out_bucket: str, json_key: str, body: bytes, meta: dict,
            stored: ObjectInfo, source: ObjectInfo, fingerprint: str) -> dict | None:
    """Write the JSON only over the result read before (`stored`) and only while the source is still the
    version analysed; on success delete the images the replaced JSON named. Returns None when committed,
    else the summary of why not: `unchanged` (another writer committed this very analysis) or `skipped`
    / superseded (the source changed: its own event writes the newer result)."""
    ours = meta[META_TOKEN]
    for _ in range(COMMIT_TRIES):
        reason = _source_changed(store, bucket, key, source)
        if reason:
            now = _stored(store, out_bucket, json_key)
            _delete_images(store, out_bucket, json_key, ours, keep=now.metadata.get(META_TOKEN, ""))
            log("object_skipped", bucket=bucket, key=key[:300], reason=reason)
            return {"key": key, "status": "skipped", "reason": reason}
        try:
            store.put(out_bucket, json_key, body, "application/json", meta, only_if=stored)
        except PreconditionFailed:
            stored = _stored(store, out_bucket, json_key)
            unchanged = _unchanged(stored, json_key, source, fingerprint)
            if unchanged:
                return {"key": key, **unchanged}
            continue
        _delete_images(store, out_bucket, json_key, stored.metadata.get(META_TOKEN), keep=ours)
        return None
    raise PreconditionFailed(f"{json_key}: lost {COMMIT_TRIES} conditional writes in a row")


def _provenance(bucket: str, key: str, source: ObjectInfo, fingerprint: str) -> tuple[dict, dict[str, str]]:
    """(the result's `input` object, the skip rule's metadata) for a source."""
    described: dict = {"bucket": bucket, "key": key, "bytes": source.size, "etag": source.etag}
    meta = {META_ANALYSIS: fingerprint, META_ETAG: source.etag or ""}
    if source.version:
        described["version"] = meta[META_VERSION] = source.version
    return described, meta


def process_object(store: ObjectStore, bucket: str, key: str, settings: Settings = SETTINGS, *,
                   source: ObjectInfo | None = None, options: Options = DEFAULT_OPTIONS) -> dict:
    """Analyse one object and write its outputs unless they are current; returns a summary.

    `source` is what the caller already knows about the object (from an event or a listing):
    with its ETag or version the skip rule costs one HEAD (of the result).
    """
    reason = skip_reason(bucket, key, settings)
    if reason:
        log("object_skipped", bucket=bucket, key=key[:300], reason=reason)
        return {"key": key, "status": "skipped", "reason": reason}
    out_bucket = settings.output_bucket or bucket
    if settings.write_redacted:  # part of the fingerprint: turning it on redoes results without the image
        options = dataclasses.replace(options, redact=True)
    fingerprint = analysis_fingerprint(options, settings)
    source = source or ObjectInfo()
    try:
        if not (source.etag or source.version):  # nothing to compare a result with: ask the source
            source = store.head(bucket, key)
        json_key = output_keys(key, settings)[1]
        stored = _stored(store, out_bucket, json_key)
        unchanged = _unchanged(stored, json_key, source, fingerprint)
        if unchanged:
            log("object_unchanged", bucket=bucket, key=key[:300])
            return {"key": key, **unchanged}
        # Size for the limit, ETag to record; a size over the limit that an event or a listing claimed
        # is confirmed first, so that no error result is written for an object that is gone.
        if not source.complete or source.size > settings.max_image_bytes:
            source = store.head(bucket, key)
        described, meta = _provenance(bucket, key, source, fingerprint)
        token = image_token(source, fingerprint)
        image_key = output_keys(key, settings, token)[0]
        if source.size > settings.max_image_bytes:
            raise RequestError(f"the object is {source.size:,} bytes; the limit is {settings.max_image_bytes:,}",
                               code="payload_too_large", status=413)
        outcome = analyze_bytes(store.get(bucket, key, source.version), options, max_bytes=settings.max_image_bytes)
    except ObjectMissing:
        log("object_skipped", bucket=bucket, key=key[:300], reason="object_missing")
        return {"key": key, "status": "skipped", "reason": "object_missing"}
    except RequestError as error:
        lost = _commit(store, bucket, key, out_bucket, json_key, _json_bytes({"input": described, **error.to_dict()}),
                       {**meta, META_ERROR: error.code, META_TOKEN: ""}, stored, source, fingerprint)
        if lost:
            return lost
        log("object_rejected", bucket=bucket, key=key[:300], code=error.code)
        return {"key": key, "status": "error", "code": error.code, "result": json_key}
    result = {k: v for k, v in outcome.result.items() if k not in ("timings_ms", "cold_start")}
    if outcome.redacted_jpeg is not None:
        store.put(out_bucket, redacted_key(image_key), outcome.redacted_jpeg, "image/jpeg")
        result = {"redacted_image": {"bucket": out_bucket, "key": redacted_key(image_key)}, **result}
    if outcome.annotated_jpeg is not None:
        store.put(out_bucket, image_key, outcome.annotated_jpeg, "image/jpeg")
        result = {"annotated_image": {"bucket": out_bucket, "key": image_key}, **result}
    result = {"input": described, **result}
    found = facts.from_result(result)
    lost = _commit(store, bucket, key, out_bucket, json_key, _json_bytes(result),
                   {**meta, **facts.to_metadata(found), META_TOKEN: token}, stored, source, fingerprint)
    if lost:
        return lost
    log("object_analyzed", bucket=bucket, key=key[:300], faces=result["faces_detected"],
        cold_start=outcome.result["cold_start"], timings_ms=outcome.result["timings_ms"])
    return {"key": key, "status": "analyzed", "result": json_key, **found,
            "labels": [f["label"] for f in result["faces"] if f.get("analyzed")]}
