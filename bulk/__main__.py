"""Run faceread over objects already in a bucket, on AWS's engines (or locally for small buckets).

    python -m bulk --bucket B --dry-run                       # count, estimate time and cost
    python -m bulk --bucket B --engine batch-ops --stack faceread-prod
    python -m bulk --bucket B --engine map --stack faceread-prod
    python -m bulk --bucket B --local 2 [--endpoint-url http://127.0.0.1:9000]

batch-ops writes a CSV manifest from a listing (or takes an S3 Inventory manifest under the output
bucket's batch/manifests/), creates an S3 Batch Operations job that invokes the `live` alias with the
template's BatchOperationsRole and a completion report, and polls it with a progress bar. map starts
the template's Distributed Map state machine. --local runs the per-object flow in N processes against
any S3-compatible endpoint: for small buckets and tests, not the scale path. Every engine shares the
skip rule, so a re-run only HEADs what is done. Nothing here schedules work: the engines do.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys

from bulk import batch_ops, dmap, local
from bulk.estimate import DEFAULT_MS_PER_IMAGE, estimate, table
from bulk.poll import list_objects
from handler import options
from handler.config import SETTINGS
from handler.errors import RequestError

MAX_FACES_CEILING = 100  # handler/config.py: MAX_FACES is in [1, 100]


def stack_outputs(name: str) -> dict[str, str]:
    """A CloudFormation stack's outputs by key."""
    import boto3

    stack = boto3.client("cloudformation").describe_stacks(StackName=name)["Stacks"][0]
    return {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bulk", description=__doc__.split("\n\n")[0])
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
    p.add_argument("--account-id", help="default: the caller's (STS GetCallerIdentity)")
    p.add_argument("--inventory-manifest", metavar="S3_URL",
                   help=f"an S3 Inventory manifest.json instead of a listing; it must lie under "
                        f"s3://<output bucket>/{batch_ops.MANIFEST_PREFIX}, where the job's role reads")
    p.add_argument("--option", action="append", default=[], metavar="NAME=VALUE",
                   help="narrow an analysis option, e.g. max_faces=3 (repeatable): " + options.describe())
    p.add_argument("--endpoint-url", default=os.environ.get("AWS_ENDPOINT_URL_S3"), help="S3-compatible endpoint")
    p.add_argument("--ms-per-image", type=float, default=DEFAULT_MS_PER_IMAGE)
    p.add_argument("--memory-mb", type=int, default=2048)
    p.add_argument("--concurrency", type=int, default=1000)
    p.add_argument("--batch-size", type=int, default=20)
    p.add_argument("--poll-seconds", type=float, default=10.0)
    return p


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = build_parser()
    args = p.parse_args(argv)
    try:
        args.user_arguments = dict(o.split("=", 1) for o in args.option) or None
    except ValueError:
        p.error("--option takes NAME=VALUE")
    try:  # the job's own check, before any job starts: a bad option would fail every task
        options.Options.merged(_ceiling(), options.from_text(args.user_arguments or {}))
    except RequestError as error:
        p.error(f"--option: {error.message}")
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


def _ceiling() -> options.Options:
    """Defaults with the highest MAX_FACES a deployment may set (config.py): the function checks its own again."""
    from handler.service import DEFAULT_OPTIONS

    return dataclasses.replace(DEFAULT_OPTIONS, max_faces=MAX_FACES_CEILING)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import boto3

    s3 = boto3.client("s3", endpoint_url=args.endpoint_url or None)
    if args.inventory_manifest and not (args.dry_run or args.local) and args.engine == "batch-ops":
        problem = batch_ops.inventory_manifest_problem(s3, args.inventory_manifest, args.output_bucket)
        if problem:
            print(f"python -m bulk: error: {problem}", file=sys.stderr)
            return 2
    needs_listing = args.dry_run or args.local or (args.engine == "batch-ops" and not args.inventory_manifest)
    objects = [o for o in list_objects(s3, args.bucket, args.prefix) if not o["Key"].endswith("/")] \
        if needs_listing else []
    if args.dry_run:
        print(table(estimate(len(objects), sum(o["Size"] for o in objects), args.ms_per_image, args.memory_mb,
                             args.concurrency, args.batch_size)))
        return 0
    if args.local:
        return local.run(args, s3, objects)
    if args.engine == "map":
        return dmap.run(args)
    return batch_ops.run(args, s3, [o["Key"] for o in objects])


if __name__ == "__main__":
    sys.exit(main())
