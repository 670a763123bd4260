"""python -m bulk against moto in server mode: dry run, local processes, job summaries, manifests, partitions."""

from __future__ import annotations

import csv
import io
import json
from urllib.parse import quote_plus, unquote_plus

import boto3
import pytest
from botocore.validate import validate_parameters
from helpers import fixture_image, jpeg

from bulk import batch_ops, dmap
from bulk.__main__ import main as bulk_main
from handler import aws

BUCKET, OUT = "faceread-backfill-in", "faceread-backfill-out"


@pytest.fixture(scope="module")
def photos(s3) -> list[str]:
    s3.create_bucket(Bucket=BUCKET)
    s3.create_bucket(Bucket=OUT)
    # The fixtures at their own 512 px: shrunk to 200 px the camera face is 27 px, `too_small`, and its
    # gender a coin toss around MIN_GENDER_CONFIDENCE (male 0.81 with res10's box, unknown 0.63 with YuNet's).
    small = [jpeg(fixture_image(n)) for n in ("camera.png", "astronaut.png", "coffee.png")]
    keys = [f"uploads/old/{i} ü+%.jpg" for i in range(6)]
    for i, key in enumerate(keys):
        s3.put_object(Bucket=BUCKET, Key=key, Body=small[i % 3])
    s3.put_object(Bucket=BUCKET, Key="uploads/old/readme.txt", Body=b"not a photo")
    s3.put_object(Bucket=BUCKET, Key="uploads/old/", Body=b"")  # a console "folder"
    return keys


def test_dry_run_counts_and_estimates(s3, photos, capsys) -> None:
    assert bulk_main(["--bucket", BUCKET, "--dry-run", "--endpoint-url", s3.meta.endpoint_url]) == 0
    out = capsys.readouterr().out
    assert "objects" in out and "7 (" in out  # 6 photos + 1 text file; the folder placeholder is not counted
    assert "Rekognition DetectFaces" in out and "$0.01" in out  # 7 images at $1 per 1,000


def test_local_backfill_writes_results_and_a_summary_then_skips(s3, photos, capsys) -> None:
    argv = ["--bucket", BUCKET, "--local", "2", "--output-bucket", OUT, "--endpoint-url", s3.meta.endpoint_url]
    assert bulk_main(argv) == 0
    totals = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert (totals["images"], totals["analyzed"], totals["bad_images"]) == (7, 6, 1)
    assert totals["failures_by_code"] == {"invalid_image": 1}
    assert totals["gender"]["male"] >= 2 and totals["gender"]["female"] >= 2  # camera x2, astronaut x2
    assert sum(totals["age_buckets"].values()) == sum(totals["gender"].values())
    assert 0 < totals["found_rate"] < 1  # coffee.png has no face
    listing = {o["Key"] for o in s3.list_objects_v2(Bucket=OUT)["Contents"]}
    assert {f"results/old/{k[12:]}.json" for k in photos} <= listing
    [summary_json] = [k for k in listing if k.endswith("/summary.json")]
    assert json.loads(s3.get_object(Bucket=OUT, Key=summary_json)["Body"].read()) == totals
    rows = dict(csv.reader(io.StringIO(s3.get_object(Bucket=OUT, Key=summary_json[:-4] + "csv")["Body"].read()
                                       .decode())))
    assert rows["images"] == "7" and rows["failures_by_code.invalid_image"] == "1"

    assert bulk_main([*argv[:3], "1", *argv[4:]]) == 0  # the re-run (one process): nothing redone
    again = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert (again["analyzed"], again["unchanged"], again["bad_images"]) == (0, 6, 1)
    assert again["gender"] == totals["gender"] and again["age_buckets"] == totals["age_buckets"]


def test_batch_operations_manifest_and_request_follow_the_api_model(photos) -> None:
    manifest = batch_ops.manifest_csv(BUCKET, photos).decode()
    assert [(b, unquote_plus(k)) for b, k in csv.reader(io.StringIO(manifest))] == [(BUCKET, k) for k in photos]
    request = batch_ops.job_request(account_id="123456789012",
                                    function_arn="arn:aws:lambda:us-east-1:1:function:f:live",
                                   role_arn="arn:aws:iam::123456789012:role/r", report_bucket=OUT,
                                   manifest_arn=f"arn:aws:s3:::{OUT}/batch/manifests/m.csv", manifest_etag="abc",
                                   user_arguments={"max_faces": "3"})
    model = boto3.client("s3control", region_name="us-east-1").meta.service_model
    validate_parameters(request, model.operation_model("CreateJob").input_shape)  # raises if malformed
    assert request["Operation"]["LambdaInvoke"]["InvocationSchemaVersion"] == "2.0"
    assert request["Report"]["ReportScope"] == "AllTasks"


def test_summaries_from_a_batch_operations_report_and_a_map_result_writer(s3, photos, capsys) -> None:
    # The resultStrings the real Lambda handler answers for these objects (schema 2.0 tasks), written
    # into a completion report as Batch Operations does (manifest.json + headerless CSV).
    listed = [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix="uploads/old/")["Contents"]]
    tasks = [{"taskId": str(i), "s3Bucket": BUCKET, "s3Key": quote_plus(k, safe="/"), "s3VersionId": None}
             for i, k in enumerate(listed)]
    answer = aws.handle_batch_operations({"invocationSchemaVersion": "2.0", "invocationId": "i",
                                          "job": {"id": "job-1", "userArguments": {}}, "tasks": tasks})
    rows = [[BUCKET, t["s3Key"], "", "succeeded" if r["resultCode"] == "Succeeded" else "failed", r["resultCode"],
             "", r["resultString"]] for t, r in zip(tasks, answer["results"])]
    rows.append([BUCKET, "uploads/old/2.jpg", "", "failed", "TemporaryFailure", "", "SlowDown"])
    report = io.StringIO()
    csv.writer(report).writerows(rows)
    s3.put_object(Bucket=OUT, Key="batch/reports/job-1/results/a.csv", Body=report.getvalue().encode())
    s3.put_object(Bucket=OUT, Key="batch/reports/job-1/manifest.json", Body=json.dumps({
        "Format": "Report_CSV_20180820", "ReportCreationDate": "2026-12-02T16:00:00Z", "ReportSchema": "",
        "Results": [{"TaskExecutionStatus": "succeeded", "Bucket": OUT, "MD5Checksum": "x",
                     "Key": "batch/reports/job-1/results/a.csv"}]}).encode())
    totals = batch_ops.summarize_report(s3, OUT, "batch/reports/job-1/manifest.json", "job-1")
    # The same objects through the local engine's way (per-object summaries, no report): the same facts.
    capsys.readouterr()
    assert bulk_main(["--bucket", BUCKET, "--local", "1", "--output-bucket", OUT, "--endpoint-url",
                      s3.meta.endpoint_url]) == 0
    local = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert (totals["images"], totals["bad_images"], totals["storage_failures"]) == (7, 1, 1)
    assert totals["failures_by_code"] == {"SlowDown": 1, "invalid_image": 1}
    assert (totals["faces"], totals["gender"], totals["age_buckets"], totals["found_rate"]) == \
        (local["faces"], local["gender"], local["age_buckets"], local["found_rate"])

    # ResultWriter's output: manifest.json naming SUCCEEDED_0.json, each child's Output our handler's answer.
    items = [{"Etag": o["ETag"], "Key": o["Key"], "Size": o["Size"]}
             for o in s3.list_objects_v2(Bucket=BUCKET, Prefix="uploads/old/")["Contents"]]
    output = aws.handle_map_batch({"BatchInput": {"bucket": BUCKET}, "Items": items})
    s3.put_object(Bucket=OUT, Key="batch/map-results/run-1/SUCCEEDED_0.json",
                  Body=json.dumps([{"Status": "SUCCEEDED", "Output": json.dumps(output)}]).encode())
    s3.put_object(Bucket=OUT, Key="batch/map-results/run-1/manifest.json", Body=json.dumps({
        "DestinationBucket": OUT, "MapRunArn": "arn", "ResultFiles": {
            "FAILED": [], "PENDING": [], "SUCCEEDED": [{"Key": "batch/map-results/run-1/SUCCEEDED_0.json"}]}}).encode())
    totals = dmap.summarize_map_results(s3, OUT, "batch/map-results/run-1/manifest.json", "map-1")
    assert (totals["images"], totals["bad_images"], totals["skipped"]) == (7, 1, 1)  # + the folder placeholder
    assert json.loads(s3.get_object(Bucket=OUT, Key="batch/summaries/map-1/summary.json")["Body"].read()) == totals


@pytest.mark.parametrize("region, partition", [("us-east-1", "aws"), ("cn-north-1", "aws-cn"),
                                               ("us-gov-west-1", "aws-us-gov")])
def test_arns_take_the_partition_from_the_callers_identity(s3, region: str, partition: str) -> None:
    sts = boto3.client("sts", endpoint_url=s3.meta.endpoint_url, region_name=region)
    account, found = batch_ops.caller(sts)  # GetCallerIdentity's Arn, from moto
    assert (account, found) == ("123456789012", partition)
    request = batch_ops.job_request(account_id=account, function_arn=f"arn:{found}:lambda:{region}:1:function:f:live",
                                    role_arn=f"arn:{found}:iam::{account}:role/r", report_bucket=OUT,
                                    manifest_arn=batch_ops.s3_arn(found, OUT, "batch/manifests/m.csv"),
                                    manifest_etag="abc", partition=found)
    assert request["Report"]["Bucket"] == f"arn:{partition}:s3:::{OUT}"
    assert request["Manifest"]["Location"]["ObjectArn"] == f"arn:{partition}:s3:::{OUT}/batch/manifests/m.csv"


def test_no_arn_is_written_by_hand() -> None:
    from pathlib import Path

    for module in Path(batch_ops.__file__).parent.glob("*.py"):
        assert "arn:aws:" not in module.read_text(), module.name


def _inventory(s3, key: str, data_key: str) -> str:
    s3.put_object(Bucket=OUT, Key=key, Body=json.dumps({
        "sourceBucket": BUCKET, "destinationBucket": f"arn:aws:s3:::{OUT}", "version": "2016-11-30",
        "fileFormat": "CSV", "fileSchema": "Bucket, Key", "files": [{"key": data_key, "size": 1,
                                                                    "MD5checksum": "x"}]}).encode())
    return f"s3://{OUT}/{key}"


def test_an_inventory_manifest_outside_the_roles_grant_is_refused_before_the_job(s3, photos, capsys) -> None:
    inside = "batch/manifests/faceread-backfill-in/daily/2026-12-01T01-00Z/manifest.json"
    good = _inventory(s3, inside, "batch/manifests/faceread-backfill-in/daily/data/a.csv.gz")
    assert batch_ops.inventory_manifest_problem(s3, good, OUT) is None
    elsewhere = _inventory(s3, "inventory/daily/manifest.json", "inventory/daily/data/a.csv.gz")
    assert "outside s3://faceread-backfill-out/batch/manifests/" in batch_ops.inventory_manifest_problem(
        s3, elsewhere, OUT)
    data_outside = _inventory(s3, "batch/manifests/x/manifest.json", "inventory/data/a.csv.gz")
    assert "data files (inventory/data/a.csv.gz" in batch_ops.inventory_manifest_problem(s3, data_outside, OUT)
    argv = ["--bucket", BUCKET, "--output-bucket", OUT, "--endpoint-url", s3.meta.endpoint_url,
            "--function-arn", "arn:aws:lambda:us-east-1:1:function:f:live", "--role-arn", "arn:aws:iam::1:role/r",
            "--inventory-manifest", elsewhere]
    assert bulk_main(argv) == 2  # no job was created: s3control is not even asked (moto has none)
    assert "the BatchOperationsRole reads manifests only there" in capsys.readouterr().err


def test_the_help_names_every_option_and_a_bad_option_stops_the_command(capsys) -> None:
    from handler.options import TABLE

    with pytest.raises(SystemExit):
        bulk_main(["--help"])
    helptext = " ".join(capsys.readouterr().out.split())
    assert all(f"{spec.name} (" in helptext for spec in TABLE)
    with pytest.raises(SystemExit) as stop:
        bulk_main(["--bucket", BUCKET, "--dry-run", "--option", "annotate=yes"])
    assert stop.value.code == 2 and "option `annotate` must be true or false" in capsys.readouterr().err
