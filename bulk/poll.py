"""The one poll loop every cloud engine shares, its progress line, and the summary's publication."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from handler.batch import JobSummary, write_summary
from handler.s3_store import S3Store


@dataclass(frozen=True)
class Progress:
    """One look at a running job: its engine's status word and its task counts."""

    status: str
    done: int
    total: int


def progress(done: int, total: int, started: float, extra: str = "") -> None:
    """One self-overwriting progress line on stderr."""
    width = 30
    frac = done / total if total else 1.0
    rate = done / max(time.monotonic() - started, 1e-9)
    bar = "#" * int(frac * width) + "." * (width - int(frac * width))
    sys.stderr.write(f"\r[{bar}] {done:,}/{total:,} ({frac:6.1%}) {rate:6.1f}/s {extra}  ")
    sys.stderr.flush()


def poll(look: Callable[[], Progress], terminal: frozenset[str], seconds: float,
         sleep: Callable[[float], None] = time.sleep) -> Progress:
    """Look at a job every `seconds` until its status is one of its engine's `terminal` words; the last look."""
    started = time.monotonic()
    while True:
        now = look()
        progress(now.done, now.total or 1, started, now.status)
        if now.status in terminal:
            sys.stderr.write("\n")
            return now
        sleep(seconds)


def list_objects(client, bucket: str, prefix: str) -> Iterator[dict]:
    """Every object under the prefix (folder placeholders included: the flow skips them)."""
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        yield from page.get("Contents", [])


def publish(s3, bucket: str, run: str, summary: JobSummary) -> dict:
    """Write a job's summary (JSON + CSV) under batch/summaries/<run>/, print and return its totals."""
    json_key, _ = write_summary(S3Store(s3), bucket, f"batch/summaries/{run}/", summary)
    totals = summary.to_dict()
    print(f"summary s3://{bucket}/{json_key}", file=sys.stderr)
    print(json.dumps(totals))
    return totals
