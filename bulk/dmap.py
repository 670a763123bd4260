"""Step Functions Distributed Map: start the template's state machine, poll it, summarise its ResultWriter output."""

from __future__ import annotations

import json
import sys

from bulk.poll import Progress, list_objects, poll, publish
from handler.batch import JobSummary

# DescribeExecution's status values after which nothing more happens.
TERMINAL = frozenset({"SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"})
RESULTS_PREFIX = "batch/map-results/"


def run(args) -> int:
    """Start an execution over the bucket's prefix, poll it, then summarise the newest ResultWriter output."""
    import boto3

    sfn = boto3.client("stepfunctions")
    execution = sfn.start_execution(stateMachineArn=args.state_machine_arn,
                                    input=json.dumps({"bucket": args.bucket, "prefix": args.prefix}))["executionArn"]
    print(f"Step Functions execution {execution}", file=sys.stderr)

    def look() -> Progress:
        status = sfn.describe_execution(executionArn=execution)["status"]
        runs = sfn.list_map_runs(executionArn=execution).get("mapRuns", [])
        if not runs:
            return Progress(status, 0, 0)
        counts = sfn.describe_map_run(mapRunArn=runs[0]["mapRunArn"])["itemCounts"]
        return Progress(status, counts["succeeded"] + counts["failed"], counts["total"])

    status = poll(look, TERMINAL, args.poll_seconds).status
    print(f"{status}; per-batch results under s3://{args.output_bucket}/{RESULTS_PREFIX}", file=sys.stderr)
    s3 = boto3.client("s3", endpoint_url=args.endpoint_url or None)
    # ResultWriter puts <prefix>/<map run id>/manifest.json: the newest one is this run's.
    manifests = [o for o in list_objects(s3, args.output_bucket, RESULTS_PREFIX)
                 if o["Key"].endswith("/manifest.json")]
    if manifests:
        newest = max(manifests, key=lambda o: o["LastModified"])["Key"]
        summarize_map_results(s3, args.output_bucket, newest, "map-" + execution.rsplit(":", 1)[-1])
    return 0 if status == "SUCCEEDED" else 1


def summarize_map_results(s3, bucket: str, manifest_key: str, run_name: str) -> dict:
    """The job summary from a Distributed Map's ResultWriter output: every batch's per-item results."""
    summary = JobSummary()
    manifest = json.loads(s3.get_object(Bucket=bucket, Key=manifest_key)["Body"].read())
    for part in manifest.get("ResultFiles", {}).get("SUCCEEDED", []):
        for child in json.loads(s3.get_object(Bucket=bucket, Key=part["Key"])["Body"].read()):
            for item in json.loads(child.get("Output") or "{}").get("results", []):
                summary.add(item)
    return publish(s3, bucket, run_name, summary)
