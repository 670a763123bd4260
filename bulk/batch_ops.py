"""S3 Batch Operations: the manifest, the CreateJob request, the job's poll, and its summary from the report.

The job invokes the `live` alias with the template's BatchOperationsRole. That role reads manifests
only under the output bucket's batch/manifests/ (template.yaml, ReadObjectsAndManifests), so an
S3 Inventory manifest given on the command line is checked against that before the job starts
(`inventory_manifest_problem`); AWS: "Granting permissions for Batch Operations" (the role must
read the manifest, and for an inventory report the data files it lists).
"""

from __future__ import annotations

import csv
import io
import json
import sys
import time
import uuid
from urllib.parse import quote_plus, unquote_plus

from bulk.poll import Progress, poll, publish
from handler import facts
from handler.batch import JobSummary

# DescribeJob's Status values after which nothing more happens.
TERMINAL = frozenset({"Complete", "Failed", "Cancelled"})
# Where the template's BatchOperationsRole may read manifests, in the output bucket.
MANIFEST_PREFIX = "batch/manifests/"
REPORT_PREFIX = "batch/reports"
# Codes a bad image produces (handler.errors / imaging): a PermanentFailure that is the photo's fault.
BAD_IMAGE_CODES = frozenset({"invalid_image", "empty_image", "unsupported_media_type", "payload_too_large",
                             "too_many_pixels"})


def partition_of(arn: str) -> str:
    """The partition an ARN names: aws, aws-cn, aws-us-gov, ..."""
    parts = arn.split(":")
    if len(parts) < 6 or parts[0] != "arn" or not parts[1]:
        raise ValueError(f"not an ARN: {arn!r}")
    return parts[1]


def caller(sts) -> tuple[str, str]:
    """(account id, partition) of whoever runs the command, from one GetCallerIdentity."""
    identity = sts.get_caller_identity()
    return identity["Account"], partition_of(identity["Arn"])


def s3_arn(partition: str, bucket: str, key: str = "") -> str:
    """An S3 bucket or object ARN in the given partition."""
    return f"arn:{partition}:s3:::{bucket}" + (f"/{key}" if key else "")


def manifest_csv(bucket: str, keys: list[str]) -> bytes:
    """A Batch Operations CSV manifest: bucket,key per line, keys URL-encoded as the format requires."""
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows([bucket, quote_plus(k, safe="/")] for k in keys)
    return out.getvalue().encode()


def job_request(*, account_id: str, function_arn: str, role_arn: str, report_bucket: str,
                manifest_arn: str, manifest_etag: str, inventory: bool = False,
                user_arguments: dict[str, str] | None = None, partition: str = "aws") -> dict:
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
        "Report": {"Bucket": s3_arn(partition, report_bucket), "Prefix": REPORT_PREFIX,
                   "Format": "Report_CSV_20180820", "Enabled": True, "ReportScope": "AllTasks"},
        "Priority": 10,
        "RoleArn": role_arn,
        "ClientRequestToken": str(uuid.uuid4()),
        "Description": "faceread backfill",
    }


def split_s3_url(url: str) -> tuple[str, str]:
    """('bucket', 'key') from s3://bucket/key (or bucket/key)."""
    bucket, _, key = url.removeprefix("s3://").partition("/")
    return bucket, key


def inventory_manifest_problem(s3, url: str, output_bucket: str) -> str | None:
    """Why the job's role could not read this S3 Inventory manifest or its data files, or None.

    The role reads s3://<output bucket>/batch/manifests/* only: point the inventory's destination
    there (prefix batch/manifests), and its manifest.json and data files land inside the grant.
    """
    bucket, key = split_s3_url(url)
    where = f"s3://{output_bucket}/{MANIFEST_PREFIX}"
    if bucket != output_bucket or not key.startswith(MANIFEST_PREFIX):
        return (f"--inventory-manifest {url} is outside {where}: the BatchOperationsRole reads manifests only "
                f"there; set the S3 Inventory's destination to bucket {output_bucket}, prefix batch/manifests")
    manifest = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    outside = [f["key"] for f in manifest.get("files", []) if not str(f.get("key", "")).startswith(MANIFEST_PREFIX)]
    data_bucket = str(manifest.get("destinationBucket", "")).rsplit(":", 1)[-1] or bucket
    if outside or data_bucket != output_bucket:
        return f"the inventory's data files ({(outside or ['?'])[0]}, ...) are outside {where}, where the role reads"
    return None


def run(args, s3, keys: list[str]) -> int:
    """Create the job from a listing (or an inventory manifest), poll it, then summarise its report."""
    import boto3

    account, partition = caller(boto3.client("sts"))
    account = args.account_id or account
    if args.inventory_manifest:
        bucket, key = split_s3_url(args.inventory_manifest)
        etag = s3.head_object(Bucket=bucket, Key=key)["ETag"].strip('"')
        manifest_arn, inventory = s3_arn(partition, bucket, key), True
    else:
        key = f"{MANIFEST_PREFIX}{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:8]}.csv"
        etag = s3.put_object(Bucket=args.output_bucket, Key=key, Body=manifest_csv(args.bucket, keys),
                             ContentType="text/csv")["ETag"].strip('"')
        manifest_arn, inventory = s3_arn(partition, args.output_bucket, key), False
    s3control = boto3.client("s3control")
    request = job_request(account_id=account, function_arn=args.function_arn, role_arn=args.role_arn,
                          report_bucket=args.output_bucket, manifest_arn=manifest_arn, manifest_etag=etag,
                          inventory=inventory, user_arguments=args.user_arguments, partition=partition)
    job_id = s3control.create_job(**request)["JobId"]
    print(f"S3 Batch Operations job {job_id}", file=sys.stderr)
    counts: dict = {}

    def look() -> Progress:
        job = s3control.describe_job(AccountId=account, JobId=job_id)["Job"]
        counts.update(job.get("ProgressSummary", {}))
        done = counts.get("NumberOfTasksSucceeded", 0) + counts.get("NumberOfTasksFailed", 0)
        return Progress(job["Status"], done, counts.get("TotalNumberOfTasks", len(keys)))

    last = poll(look, TERMINAL, args.poll_seconds)
    print(f"{last.status}: {counts.get('NumberOfTasksSucceeded', 0):,} succeeded, "
          f"{counts.get('NumberOfTasksFailed', 0):,} failed; report under s3://{args.output_bucket}/{REPORT_PREFIX}/",
          file=sys.stderr)
    if last.status != "Complete":  # a failed or cancelled job may have no report to summarise
        return 1
    summarize_report(s3, args.output_bucket, f"{REPORT_PREFIX}/job-{job_id}/manifest.json", f"job-{job_id}")
    return 0


def summary_from_report_row(row: list[str]) -> dict:
    """A per-object summary from a completion report row, its facts read by handler.facts.

    Row: bucket, key, version, task status, error code, HTTP status, result message (our resultString).
    """
    key, message = unquote_plus(row[1]), row[6] if len(row) > 6 else ""
    unchanged = message.startswith("unchanged, ")
    found = facts.from_text(message.removeprefix("unchanged, "))
    if found is not None:
        return {"key": key, "status": "unchanged" if unchanged else "analyzed", **found}
    if message.startswith("skipped: "):
        return {"key": key, "status": "skipped", "reason": message.removeprefix("skipped: ")}
    if message == "object_missing":
        return {"key": key, "status": "skipped", "reason": message}
    code = message.split(":")[0] or row[4] or "unknown"
    return {"key": key, "status": "error" if row[3] == "failed" and code in BAD_IMAGE_CODES else "failed",
            "code": code}


def summarize_report(s3, bucket: str, manifest_key: str, run_name: str) -> dict:
    """The job summary from a Batch Operations completion report (its manifest.json lists the CSV files)."""
    summary = JobSummary()
    manifest = json.loads(s3.get_object(Bucket=bucket, Key=manifest_key)["Body"].read())
    for part in manifest.get("Results", []):
        report_bucket = part["Bucket"].rsplit(":", 1)[-1]  # a name or an ARN
        body = s3.get_object(Bucket=report_bucket, Key=part["Key"])["Body"].read().decode()
        for row in csv.reader(io.StringIO(body)):
            summary.add(summary_from_report_row(row))
    return publish(s3, bucket, run_name, summary)
