"""Many objects through the per-object flow: failures classified, compact answers, job summaries.

Shared by every bulk path (SQS-wrapped uploads, S3 Batch Operations, Distributed Map batches,
Cloud Run job tasks, local backfills); none of it schedules anything.
"""

from __future__ import annotations

import csv
import io
import json
import traceback
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from handler import facts
from handler.config import SETTINGS, Settings
from handler.logs import log
from handler.options import Options, from_text
from handler.service import DEFAULT_OPTIONS
from handler.storage import ObjectInfo, ObjectStore
from handler.storage_trigger import process_object

# Storage error codes a retry can fix: throttling, server errors, timeouts (S3 and Cloud Storage).
TRANSIENT_CODES = frozenset({
    "SlowDown", "Throttling", "ThrottlingException", "TooManyRequests", "TooManyRequestsException",
    "RequestLimitExceeded", "RequestTimeout", "RequestTimeoutException", "InternalError", "ServiceUnavailable",
    "BadGateway", "GatewayTimeout", "InternalServerError",
})
# Skips that are no failure: a folder placeholder in a listing; an object replaced while it was analysed
# (its newer version's own event or task writes the result: storage_trigger's commit).
BENIGN_SKIPS = frozenset({"folder_placeholder", "superseded"})
# Batch Operations stores resultString in the completion report: keep it a short line.
RESULT_STRING_LIMIT = 240


def error_code(exc: BaseException) -> str:
    """A stable short name for a storage failure: S3's error code, else the exception's class name."""
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        code = str(response.get("Error", {}).get("Code", "") or "")
        if code:
            return code
    return type(exc).__name__


def is_transient(exc: BaseException) -> bool:
    """Whether a retry may succeed: throttling, 5xx, timeouts and dropped connections."""
    if error_code(exc) in TRANSIENT_CODES:
        return True
    response = getattr(exc, "response", None)
    if isinstance(response, dict):  # botocore ClientError
        status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        return isinstance(status, int) and (status >= 500 or status == 429)
    code = getattr(exc, "code", None)  # google.api_core errors carry the HTTP status
    if isinstance(code, int):
        return code >= 500 or code == 429
    names = {cls.__name__ for cls in type(exc).__mro__}
    # builtin ConnectionError/TimeoutError, botocore's HTTPClientError/ConnectionError (no import needed)
    return bool(names & {"ConnectionError", "TimeoutError", "HTTPClientError"})


def options_from_arguments(arguments: dict[str, Any] | None, base: Options = DEFAULT_OPTIONS) -> Options:
    """Options narrowed by a job's arguments; raise RequestError(invalid_options) for anything else.

    What a job may narrow (Batch Operations userArguments, a Distributed Map's BatchInput options)
    is exactly the HTTP API's options, through the same table and validation, never the deployment's
    settings. Batch Operations userArguments are text ("3", "false", "1"): read as the query string is.
    """
    if not arguments:
        return base
    return base.merged(from_text(arguments) if isinstance(arguments, dict) else arguments)


def run_one(store: ObjectStore, bucket: str, key: str, settings: Settings = SETTINGS, *,
            source: ObjectInfo | None = None, options: Options = DEFAULT_OPTIONS) -> tuple[dict, Exception | None]:
    """process_object, with a storage failure turned into a `failed` summary plus the exception."""
    try:
        return process_object(store, bucket, key, settings, source=source, options=options), None
    except Exception as exc:  # noqa: BLE001 - the caller decides: retry, report, or raise after the rest
        log("object_failed", level=40, bucket=bucket, key=key[:300], error=error_code(exc),
            trace=traceback.format_exc(limit=5))
        return {"key": key, "status": "failed", "code": error_code(exc), "transient": is_transient(exc)}, exc


def _faces_text(summary: dict) -> str:
    """The job facts (handler.facts, which bulk reads back from the completion report), then the labels for people."""
    text = facts.to_text(summary)
    labels = summary.get("labels")
    if labels:
        text += ": " + "; ".join(labels)
    return text


def batch_operations_result(summary: dict) -> tuple[str, str]:
    """(resultCode, resultString) for a Batch Operations completion report: faces and labels, or the code."""
    status = summary["status"]
    if status == "analyzed":
        code, text = "Succeeded", _faces_text(summary)
    elif status == "unchanged" and "code" not in summary:
        code, text = "Succeeded", "unchanged, " + _faces_text(summary)
    elif status in ("error", "unchanged"):  # a bad image: its error JSON is written; a retry can't fix it
        code, text = "PermanentFailure", summary["code"]
    elif status == "skipped":
        # A benign skip is expected; any other means the manifest named the wrong keys, or they are gone.
        reason = summary["reason"]
        code = "Succeeded" if reason in BENIGN_SKIPS else "PermanentFailure"
        text = reason if reason == "object_missing" else "skipped: " + reason
    else:
        code, text = ("TemporaryFailure" if summary.get("transient") else "PermanentFailure"), summary["code"]
    if len(text) > RESULT_STRING_LIMIT:
        text = text[:RESULT_STRING_LIMIT - 1] + "…"
    return code, text


def compact(summary: dict) -> dict:
    """A per-item result small enough for a Step Functions state (256 KB per batch)."""
    keep = ("key", "status", "reason", "code", "faces", "genders", "age_buckets")
    return {k: summary[k] for k in keep if k in summary}


@dataclass
class JobSummary:
    """Aggregates over a job's per-object summaries: what no cloud API returns for face attributes."""

    statuses: Counter = field(default_factory=Counter)
    decoded: int = 0
    faces: int = 0
    with_faces: int = 0
    genders: Counter = field(default_factory=Counter)
    age_buckets: Counter = field(default_factory=Counter)
    failures: Counter = field(default_factory=Counter)

    def add(self, summary: dict) -> None:
        status = summary["status"]
        bad = status == "error" or (status == "unchanged" and "code" in summary)
        self.statuses["error" if bad else status] += 1
        if status in ("analyzed", "unchanged") and not bad:
            self.decoded += 1
            self.faces += summary.get("faces", 0)
            self.with_faces += summary.get("faces", 0) > 0
            self.genders.update(summary.get("genders", []))
            self.age_buckets.update(summary.get("age_buckets", []))
        elif status == "skipped":
            self.failures["skipped:" + summary["reason"]] += summary["reason"] not in BENIGN_SKIPS
        else:  # a bad image (its code, also when unchanged) or a storage failure
            self.failures[summary["code"]] += 1

    def to_dict(self) -> dict:
        """images: objects read (analysed, unchanged or bad); found_rate: share of decoded images with a face."""
        images = self.statuses["analyzed"] + self.statuses["unchanged"] + self.statuses["error"]
        found = self.with_faces / self.decoded if self.decoded else 0.0
        return {
            "images": images,
            "analyzed": self.statuses["analyzed"], "unchanged": self.statuses["unchanged"],
            "bad_images": self.statuses["error"], "storage_failures": self.statuses["failed"],
            "skipped": self.statuses["skipped"],
            "faces": self.faces, "found_rate": round(found, 4),
            "gender": {g: self.genders[g] for g in facts.GENDERS},
            "age_buckets": {b: self.age_buckets[b] for b in facts.BUCKET_LABELS},
            "failures_by_code": dict(sorted((k, v) for k, v in self.failures.items() if v)),
        }

    def to_csv(self) -> str:
        """One `metric,value` row per number, nested names joined by dots."""
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["metric", "value"])
        for name, value in self.to_dict().items():
            if isinstance(value, dict):
                writer.writerows([f"{name}.{k}", v] for k, v in value.items())
            else:
                writer.writerow([name, value])
        return out.getvalue()


def write_summary(store: ObjectStore, bucket: str, prefix: str, summary: JobSummary) -> tuple[str, str]:
    """Put summary.json and summary.csv under `prefix`; returns their keys."""
    json_key, csv_key = prefix + "summary.json", prefix + "summary.csv"
    store.put(bucket, json_key, json.dumps(summary.to_dict(), indent=2).encode(), "application/json")
    store.put(bucket, csv_key, summary.to_csv().encode(), "text/csv")
    return json_key, csv_key
