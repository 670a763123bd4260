"""Run faceread over objects already in a bucket, on AWS's engines (or locally for small buckets).

    python -m handler.backfill --bucket B --dry-run                       # count, estimate time and cost
    python -m handler.backfill --bucket B --engine batch-ops --stack faceread-prod
    python -m handler.backfill --bucket B --engine map --stack faceread-prod
    python -m handler.backfill --bucket B --local 2 [--endpoint-url http://127.0.0.1:9000]

batch-ops writes a CSV manifest from a listing (or takes an S3 Inventory manifest), creates an
S3 Batch Operations job that invokes the `live` alias with the template's BatchOperationsRole and a
completion report, and polls it with a progress bar. map starts the template's Distributed Map state
machine. --local runs the per-object flow in N processes against any S3-compatible endpoint: for
small buckets and tests, not the scale path. Every engine shares the skip rule, so a re-run only
HEADs what is done. Nothing here schedules work: the engines do.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import io
import json
import multiprocessing
import os
import sys
import time
import uuid
from collections.abc import Iterator
from urllib.parse import quote_plus

# A 640x480 one-face photo on Lambda at 2048 MB (README, "Backfill: measured, and 1 M images"): the
# analysis, 30 ms (`make bench`), times the flow's same-run overhead against local moto (1.96x,
# `make bench-backfill`), plus in-region S3 latency for HEAD, GET and two PUTs (~65 ms, estimated).
# Pass --ms-per-image for other photos: a 12 MP phone photo is ~480 ms.
DEFAULT_MS_PER_IMAGE = 125.0
LAMBDA_GB_SECOND = 0.0000166667  # x86, us-east-1 list price
LAMBDA_PER_REQUEST = 0.20 / 1_000_000
BATCH_OPS_PER_JOB, BATCH_OPS_PER_OBJECT = 0.25, 1.00 / 1_000_000
S3_GET, S3_PUT = 0.0004 / 1000, 0.005 / 1000  # HEAD is priced as GET
REKOGNITION_PER_IMAGE = 1.00 / 1000  # DetectFaces, first million images a month
TERMINAL = {"Complete", "Failed", "Cancelled", "SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"}


def progress(done: int, total: int, started: float, extra: str = "") -> None:
    """One self-overwriting progress line on stderr."""
    width = 30
    frac = done / total if total else 1.0
    rate = done / max(time.monotonic() - started, 1e-9)
    bar = "#" * int(frac * width) + "." * (width - int(frac * width))
    sys.stderr.write(f"\r[{bar}] {done:,}/{total:,} ({frac:6.1%}) {rate:6.1f}/s {extra}  ")
    sys.stderr.flush()


def list_objects(client, bucket: str, prefix: str) -> Iterator[dict]:
    """Every object under the prefix (folder placeholders included: the flow skips them)."""
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        yield from page.get("Contents", [])


def estimate(count: int, total_bytes: int, ms_per_image: float, memory_mb: int, concurrency: int,
             batch_size: int) -> list[tuple[str, str]]:
    """Wall clock and list-price cost of analysing `count` objects, beside Rekognition DetectFaces."""
    seconds = count * ms_per_image / 1000
    gb_seconds = seconds * memory_mb / 1024
    compute = gb_seconds * LAMBDA_GB_SECOND
    s3 = count * (2 * S3_GET + 2 * S3_PUT)  # HEAD result + GET source, PUT image + PUT JSON
    batch_ops = BATCH_OPS_PER_JOB + count * (BATCH_OPS_PER_OBJECT + LAMBDA_PER_REQUEST)
    dmap = -(-count // batch_size) * LAMBDA_PER_REQUEST  # (+ Step Functions transitions, see README)
    return [
        ("objects", f"{count:,} ({total_bytes / 1e9:,.2f} GB)"),
        (f"ms per image (Lambda, {memory_mb} MB)", f"{ms_per_image:.0f}"),
        ("compute, serial", f"{seconds / 3600:,.1f} h"),
        (f"wall clock at {concurrency:,}-way", f"{seconds / concurrency / 60:,.1f} min"),
        (f"Lambda compute ({memory_mb} MB)", f"${compute:,.2f}"),
        ("S3 requests", f"${s3:,.2f}"),
        ("total, Batch Operations", f"${compute + s3 + batch_ops:,.2f}"),
        (f"total, Distributed Map ({batch_size}/batch)", f"${compute + s3 + dmap:,.2f} + transitions"),
        ("Rekognition DetectFaces, for comparison", f"${count * REKOGNITION_PER_IMAGE:,.2f}"),
    ]


# ---------------------------------------------------------------- S3 Batch Operations

def manifest_csv(bucket: str, keys: list[str]) -> bytes:
    """A Batch Operations CSV manifest: bucket,key per line, keys URL-encoded as the format requires."""
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows([bucket, quote_plus(k, safe="/")] for k in keys)
    return out.getvalue().encode()


def job_request(*, account_id: str, function_arn: str, role_arn: str, report_bucket: str,
                manifest_arn: str, manifest_etag: str, inventory: bool = False,
                user_arguments: dict[str, str] | None = None) -> dict:
    """The CreateJob request: LambdaInvoke (schema 2.0), the manifest, a completion report of every task."""
    fmt, fields = ("S3InventoryReport_CSV_20161130", None) if inventory else ("S3BatchOperations_CSV_20180820",
                                                                             ["Bucket", "Key"])
    spec = {"Format": fmt, **({"Fields": fields} if fields else {})}
    return {
        "AccountId": account_id,
        "ConfirmationRequired": False,
        "Operation": {"LambdaInvoke": {"FunctionArn": function_arn, "InvocationSchemaVersion": "2.0",
                                       "UserArguments": user_arguments or {}}},
        "Manifest": {"Spec": spec, "Location": {"ObjectArn": manifest_arn, "ETag": manifest_etag}},
        "Report": {"Bucket": f"arn:aws:s3:::{report_bucket}", "Prefix": "batch/reports",
                   "Format": "Report_CSV_20180820", "Enabled": True, "ReportScope": "AllTasks"},
        "Priority": 10,
        "RoleArn": role_arn,
        "ClientRequestToken": str(uuid.uuid4()),
        "Description": "faceread backfill",
    }


def run_batch_operations(args, s3, keys: list[str]) -> int:
    import boto3

    account = args.account_id or boto3.client("sts").get_caller_identity()["Account"]
    if args.inventory_manifest:
        bucket, _, key = args.inventory_manifest.removeprefix("s3://").partition("/")
        etag = s3.head_object(Bucket=bucket, Key=key)["ETag"].strip('"')
        manifest_arn, inventory = f"arn:aws:s3:::{bucket}/{key}", True
    else:
        key = f"batch/manifests/{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:8]}.csv"
        etag = s3.put_object(Bucket=args.output_bucket, Key=key, Body=manifest_csv(args.bucket, keys),
                             ContentType="text/csv")["ETag"].strip('"')
        manifest_arn, inventory = f"arn:aws:s3:::{args.output_bucket}/{key}", False
    s3control = boto3.client("s3control")
    request = job_request(account_id=account, function_arn=args.function_arn, role_arn=args.role_arn,
                          report_bucket=args.output_bucket, manifest_arn=manifest_arn, manifest_etag=etag,
                          inventory=inventory, user_arguments=args.user_arguments)
    job_id = s3control.create_job(**request)["JobId"]
    print(f"S3 Batch Operations job {job_id}", file=sys.stderr)
    started = time.monotonic()
    while True:
        job = s3control.describe_job(AccountId=account, JobId=job_id)["Job"]
        p = job.get("ProgressSummary", {})
        done = p.get("NumberOfTasksSucceeded", 0) + p.get("NumberOfTasksFailed", 0)
        progress(done, p.get("TotalNumberOfTasks", len(keys)) or 1, started, job["Status"])
        if job["Status"] in TERMINAL:
            break
        time.sleep(args.poll_seconds)
    print(f"\n{job['Status']}: {p.get('NumberOfTasksSucceeded', 0):,} succeeded, "
          f"{p.get('NumberOfTasksFailed', 0):,} failed; report under s3://{args.output_bucket}/batch/reports/",
          file=sys.stderr)
    if job["Status"] != "Complete":  # a failed or cancelled job may have no report to summarise
        return 1
    summarize_report(s3, args.output_bucket, f"batch/reports/job-{job_id}/manifest.json", f"job-{job_id}")
    return 0


def summarize_report(s3, bucket: str, manifest_key: str, run: str) -> dict:
    """The job summary from a Batch Operations completion report (its manifest.json lists the CSV files)."""
    from handler.aws import S3Store
    from handler.batch import JobSummary, summary_from_report_row

    summary = JobSummary()
    manifest = json.loads(s3.get_object(Bucket=bucket, Key=manifest_key)["Body"].read())
    for part in manifest.get("Results", []):
        report_bucket = part["Bucket"].rsplit(":", 1)[-1]  # a name or an ARN
        body = s3.get_object(Bucket=report_bucket, Key=part["Key"])["Body"].read().decode()
        for row in csv.reader(io.StringIO(body)):
            summary.add(summary_from_report_row(row))
    return _publish(S3Store(s3), bucket, run, summary)


def summarize_map_results(s3, bucket: str, manifest_key: str, run: str) -> dict:
    """The job summary from a Distributed Map's ResultWriter output: every batch's per-item results."""
    from handler.aws import S3Store
    from handler.batch import JobSummary

    summary = JobSummary()
    manifest = json.loads(s3.get_object(Bucket=bucket, Key=manifest_key)["Body"].read())
    for part in manifest.get("ResultFiles", {}).get("SUCCEEDED", []):
        for child in json.loads(s3.get_object(Bucket=bucket, Key=part["Key"])["Body"].read()):
            for item in json.loads(child.get("Output") or "{}").get("results", []):
                summary.add(item)
    return _publish(S3Store(s3), bucket, run, summary)


def _publish(store, bucket: str, run: str, summary) -> dict:
    from handler.batch import write_summary

    json_key, _ = write_summary(store, bucket, f"batch/summaries/{run}/", summary)
    totals = summary.to_dict()
    print(f"summary s3://{bucket}/{json_key}", file=sys.stderr)
    print(json.dumps(totals))
    return totals


def run_distributed_map(args) -> int:
    import boto3

    sfn = boto3.client("stepfunctions")
    execution = sfn.start_execution(stateMachineArn=args.state_machine_arn,
                                    input=json.dumps({"bucket": args.bucket, "prefix": args.prefix}))["executionArn"]
    print(f"Step Functions execution {execution}", file=sys.stderr)
    started = time.monotonic()
    while True:
        status = sfn.describe_execution(executionArn=execution)["status"]
        runs = sfn.list_map_runs(executionArn=execution).get("mapRuns", [])
        if runs:
            counts = sfn.describe_map_run(mapRunArn=runs[0]["mapRunArn"])["itemCounts"]
            progress(counts["succeeded"] + counts["failed"], counts["total"] or 1, started, status)
        if status in TERMINAL:
            break
        time.sleep(args.poll_seconds)
    print(f"\n{status}; per-batch results under s3://{args.output_bucket}/batch/map-results/", file=sys.stderr)
    s3 = boto3.client("s3", endpoint_url=args.endpoint_url or None)
    # ResultWriter puts <prefix>/<map run id>/manifest.json: the newest one is this run's.
    manifests = [o for o in list_objects(s3, args.output_bucket, "batch/map-results/")
                 if o["Key"].endswith("/manifest.json")]
    if manifests:
        newest = max(manifests, key=lambda o: o["LastModified"])["Key"]
        summarize_map_results(s3, args.output_bucket, newest, "map-" + execution.rsplit(":", 1)[-1])
    return 0 if status == "SUCCEEDED" else 1


# ---------------------------------------------------------------- local processes

_worker: dict = {}


def _init_worker(endpoint_url: str | None, settings_changes: dict, options: dict | None) -> None:
    if endpoint_url:
        os.environ["AWS_ENDPOINT_URL_S3"] = endpoint_url
    from handler import aws
    from handler.batch import options_from_arguments
    from handler.config import SETTINGS

    _worker.update(store=aws.S3Store(aws.s3_client()), settings=dataclasses.replace(SETTINGS, **settings_changes),
                   options=options_from_arguments(options))


def _process(item: tuple[str, str, str | None, int]) -> dict:
    from handler.batch import run_one
    from handler.storage_trigger import ObjectInfo, clean_etag

    bucket, key, etag, size = item
    summary, _ = run_one(_worker["store"], bucket, key, _worker["settings"],
                         source=ObjectInfo(size=size, etag=clean_etag(etag)), options=_worker["options"])
    return summary


def run_local(args, s3, objects: list[dict]) -> int:
    from handler.aws import S3Store
    from handler.batch import JobSummary, write_summary

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


# ---------------------------------------------------------------- command line

def stack_outputs(name: str) -> dict[str, str]:
    import boto3

    stack = boto3.client("cloudformation").describe_stacks(StackName=name)["Stacks"][0]
    return {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    from handler.config import SETTINGS

    p = argparse.ArgumentParser(prog="python -m handler.backfill", description=__doc__.split("\n\n")[0])
    p.add_argument("--bucket", help="input bucket (default: the stack's InputBucketName)")
    p.add_argument("--prefix", default=SETTINGS.input_prefix, help="key prefix (default INPUT_PREFIX)")
    p.add_argument("--engine", choices=["batch-ops", "map"], default="batch-ops")
    p.add_argument("--local", type=int, metavar="N", help="run locally in N processes instead of on AWS")
    p.add_argument("--dry-run", action="store_true", help="count objects and estimate time and cost only")
    p.add_argument("--stack", help="CloudFormation stack to read buckets, role, alias and state machine from")
    p.add_argument("--output-bucket", default=SETTINGS.output_bucket or None)
    p.add_argument("--function-arn", help="the alias Batch Operations invokes (stack output FunctionAliasArn)")
    p.add_argument("--role-arn", help="Batch Operations role (stack output BatchOperationsRoleArn)")
    p.add_argument("--state-machine-arn", help="Distributed Map state machine (BackfillStateMachineArn)")
    p.add_argument("--account-id")
    p.add_argument("--inventory-manifest", metavar="S3_URL", help="an S3 Inventory manifest.json instead of a listing")
    p.add_argument("--option", action="append", default=[], metavar="NAME=VALUE",
                   help="narrow an analysis option (max_faces, min_confidence, annotate), e.g. max_faces=3")
    p.add_argument("--endpoint-url", default=os.environ.get("AWS_ENDPOINT_URL_S3"), help="S3-compatible endpoint")
    p.add_argument("--ms-per-image", type=float, default=DEFAULT_MS_PER_IMAGE)
    p.add_argument("--memory-mb", type=int, default=2048)
    p.add_argument("--concurrency", type=int, default=1000)
    p.add_argument("--batch-size", type=int, default=20)
    p.add_argument("--poll-seconds", type=float, default=10.0)
    args = p.parse_args(argv)
    try:
        args.user_arguments = dict(o.split("=", 1) for o in args.option) or None
    except ValueError:
        p.error("--option takes NAME=VALUE")
    if args.stack:
        out = stack_outputs(args.stack)
        args.bucket = args.bucket or out.get("InputBucketName")
        args.output_bucket = args.output_bucket or out.get("OutputBucketName")
        args.function_arn = args.function_arn or out.get("FunctionAliasArn")
        args.role_arn = args.role_arn or out.get("BatchOperationsRoleArn")
        args.state_machine_arn = args.state_machine_arn or out.get("BackfillStateMachineArn")
    if not args.bucket:
        p.error("--bucket (or --stack) is required")
    if args.local is not None and args.local < 1:
        p.error("--local N needs N >= 1")
    if not (args.dry_run or args.local):
        needed = {"batch-ops": ["function_arn", "role_arn", "output_bucket"],
                  "map": ["state_machine_arn", "output_bucket"]}[args.engine]
        missing = [n for n in needed if not getattr(args, n)]
        if missing:
            p.error("missing " + ", ".join("--" + n.replace("_", "-") for n in missing) + " (or --stack)")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import boto3

    s3 = boto3.client("s3", endpoint_url=args.endpoint_url or None)
    needs_listing = args.dry_run or args.local or (args.engine == "batch-ops" and not args.inventory_manifest)
    objects = [o for o in list_objects(s3, args.bucket, args.prefix) if not o["Key"].endswith("/")] \
        if needs_listing else []
    if args.dry_run:
        rows = estimate(len(objects), sum(o["Size"] for o in objects), args.ms_per_image, args.memory_mb,
                        args.concurrency, args.batch_size)
        width = max(len(r[0]) for r in rows)
        print("\n".join(f"{name:<{width}}  {value}" for name, value in rows))
        return 0
    if args.local:
        return run_local(args, s3, objects)
    if args.engine == "map":
        return run_distributed_map(args)
    return run_batch_operations(args, s3, [o["Key"] for o in objects])


if __name__ == "__main__":
    sys.exit(main())
