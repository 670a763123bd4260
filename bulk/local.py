"""The local engine: the per-object flow in N processes against any S3-compatible endpoint (small buckets, tests)."""

from __future__ import annotations

import dataclasses
import json
import multiprocessing
import os
import sys
import time

from bulk.poll import progress

_worker: dict = {}


def _init_worker(endpoint_url: str | None, settings_changes: dict, options: dict | None) -> None:
    if endpoint_url:
        os.environ["AWS_ENDPOINT_URL_S3"] = endpoint_url
    import boto3
    from botocore.config import Config

    from handler.batch import options_from_arguments
    from handler.config import SETTINGS
    from handler.s3_store import S3Store

    client = boto3.client("s3", endpoint_url=endpoint_url or None,
                          config=Config(retries={"mode": "standard", "max_attempts": 3}))
    _worker.update(store=S3Store(client), settings=dataclasses.replace(SETTINGS, **settings_changes),
                   options=options_from_arguments(options))


def _process(item: tuple[str, str, str | None, int]) -> dict:
    from handler.batch import run_one
    from handler.storage import ObjectInfo, clean_etag

    bucket, key, etag, size = item
    summary, _ = run_one(_worker["store"], bucket, key, _worker["settings"],
                         source=ObjectInfo(size=size, etag=clean_etag(etag)), options=_worker["options"])
    return summary


def run(args, s3, objects: list[dict]) -> int:
    """Analyse the listed objects in `args.local` processes; write and print the summary."""
    from handler.batch import JobSummary, write_summary
    from handler.s3_store import S3Store

    items = [(args.bucket, o["Key"], o.get("ETag"), o.get("Size")) for o in objects]
    changes = {"output_bucket": args.output_bucket} if args.output_bucket else {}
    summary, started = JobSummary(), time.monotonic()
    context = multiprocessing.get_context("spawn")  # OpenCV's thread pools don't survive fork()
    with context.Pool(args.local, _init_worker, (args.endpoint_url, changes, args.user_arguments)) as pool:
        for n, result in enumerate(pool.imap_unordered(_process, items, chunksize=4), 1):
            summary.add(result)
            progress(n, len(items), started)
    elapsed = time.monotonic() - started
    prefix = f"batch/summaries/local-{time.strftime('%Y%m%dT%H%M%S')}/"
    json_key, _ = write_summary(S3Store(s3), args.output_bucket or args.bucket, prefix, summary)
    totals = summary.to_dict()
    print(f"\n{len(items):,} objects in {elapsed:.1f} s ({len(items) / elapsed:.1f}/s): "
          f"{totals['analyzed']:,} analysed, {totals['unchanged']:,} unchanged, {totals['bad_images']:,} bad, "
          f"{totals['storage_failures']:,} failed; summary s3://{args.output_bucket or args.bucket}/{json_key}",
          file=sys.stderr)
    print(json.dumps(totals))
    return 1 if totals["storage_failures"] else 0
