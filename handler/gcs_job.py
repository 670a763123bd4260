"""Cloud Run job entry point: every object under a Cloud Storage prefix, sharded across the job's tasks.

    python -m handler.gcs_job --bucket BUCKET [--prefix uploads/]     (or JOB_BUCKET / JOB_PREFIX)

Cloud Run starts CLOUD_RUN_TASK_COUNT copies with CLOUD_RUN_TASK_INDEX 0..N-1 (and retries a failed
task itself); each lists the prefix and takes the objects whose key hashes to its index, so the
shards are disjoint and cover the listing whatever order it comes in. Each object goes through the
same per-object flow and skip rule as uploads: a re-run costs what the listing already paid plus
one HEAD per analysed object. Each task writes its summary (JSON + CSV) to the output bucket under
batch/summaries/<execution>/task-<index>; the task exits 1 if any object hit a storage failure, so
Cloud Run retries the task (finished objects are skipped).
"""

from __future__ import annotations

import argparse
import os
import sys
import zlib

from handler.batch import JobSummary, run_one, write_summary
from handler.config import SETTINGS
from handler.gcs_store import GcsStore, blob_info, gcs_client
from handler.logs import invocation, log


def shard_of(key: str, count: int) -> int:
    """The task that owns a key: stable across tasks, processes and listing order."""
    return zlib.crc32(key.encode("utf-8", "surrogateescape")) % count


def run_task(bucket: str, prefix: str, index: int, count: int, execution: str) -> JobSummary:
    """Process this task's shard of gs://bucket/prefix; write and return its summary."""
    client = gcs_client()
    store = GcsStore(client)
    summary = JobSummary()
    for blob in client.list_blobs(bucket, prefix=prefix):
        if shard_of(blob.name, count) != index:
            continue
        result, _ = run_one(store, bucket, blob.name, source=blob_info(blob))
        summary.add(result)
    where = f"batch/summaries/{execution}/task-{index:04d}."
    write_summary(store, SETTINGS.output_bucket or bucket, where, summary)
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m handler.gcs_job", description=__doc__.split("\n\n")[0])
    parser.add_argument("--bucket", default=os.environ.get("JOB_BUCKET"), help="input bucket (JOB_BUCKET)")
    parser.add_argument("--prefix", default=os.environ.get("JOB_PREFIX", SETTINGS.input_prefix),
                        help="key prefix (JOB_PREFIX, default INPUT_PREFIX)")
    args = parser.parse_args(argv)
    if not args.bucket:
        parser.error("--bucket (or JOB_BUCKET) is required")
    index = int(os.environ.get("CLOUD_RUN_TASK_INDEX", "0"))
    count = int(os.environ.get("CLOUD_RUN_TASK_COUNT", "1"))
    if not 0 <= index < count:
        parser.error(f"CLOUD_RUN_TASK_INDEX={index} is outside [0, CLOUD_RUN_TASK_COUNT={count})")
    execution = os.environ.get("CLOUD_RUN_EXECUTION", "local")
    with invocation(f"{execution}/task-{index}"):
        summary = run_task(args.bucket, args.prefix, index, count, execution)
        totals = summary.to_dict()
        log("task_done", index=index, count=count, **{k: totals[k] for k in ("images", "analyzed", "unchanged",
                                                                         "bad_images", "storage_failures")})
    return 1 if totals["storage_failures"] else 0


if __name__ == "__main__":
    sys.exit(main())
