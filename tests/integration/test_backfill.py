"""python -m handler.backfill against moto in server mode: dry run, local processes, job summary, manifests."""

from __future__ import annotations

import csv
import io
import json
from urllib.parse import unquote_plus

import boto3
import pytest
from botocore.validate import validate_parameters
from helpers import fixture_image, jpeg

from handler import backfill

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
    assert backfill.main(["--bucket", BUCKET, "--dry-run", "--endpoint-url", s3.meta.endpoint_url]) == 0
    out = capsys.readouterr().out
    assert "objects" in out and "7 (" in out  # 6 photos + 1 text file; the folder placeholder is not counted
    assert "Rekognition DetectFaces" in out and "$0.01" in out  # 7 images at $1 per 1,000


def test_local_backfill_writes_results_and_a_summary_then_skips(s3, photos, capsys) -> None:
    argv = ["--bucket", BUCKET, "--local", "2", "--output-bucket", OUT, "--endpoint-url", s3.meta.endpoint_url]
    assert backfill.main(argv) == 0
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

    assert backfill.main([*argv[:3], "1", *argv[4:]]) == 0  # the re-run (one process): nothing redone
    again = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert (again["analyzed"], again["unchanged"], again["bad_images"]) == (0, 6, 1)
    assert again["gender"] == totals["gender"] and again["age_buckets"] == totals["age_buckets"]


def test_batch_operations_manifest_and_request_follow_the_api_model(photos) -> None:
    manifest = backfill.manifest_csv(BUCKET, photos).decode()
    assert [(b, unquote_plus(k)) for b, k in csv.reader(io.StringIO(manifest))] == [(BUCKET, k) for k in photos]
    request = backfill.job_request(account_id="123456789012", function_arn="arn:aws:lambda:us-east-1:1:function:f:live",
                                   role_arn="arn:aws:iam::123456789012:role/r", report_bucket=OUT,
                                   manifest_arn=f"arn:aws:s3:::{OUT}/batch/manifests/m.csv", manifest_etag="abc",
                                   user_arguments={"max_faces": "3"})
    model = boto3.client("s3control", region_name="us-east-1").meta.service_model
    validate_parameters(request, model.operation_model("CreateJob").input_shape)  # raises if malformed
    assert request["Operation"]["LambdaInvoke"]["InvocationSchemaVersion"] == "2.0"
    assert request["Report"]["ReportScope"] == "AllTasks"


def test_summaries_from_a_batch_operations_report_and_a_map_result_writer(s3, photos, capsys) -> None:
    # A completion report as Batch Operations writes it (manifest.json + headerless CSV), our resultStrings.
    rows = [[BUCKET, "uploads/old/0+%C3%BC.jpg", "", "succeeded", "200", "", "2 faces: Female, (25-32); Male, (38-43)"],
            [BUCKET, "uploads/old/1.jpg", "", "succeeded", "200", "", "unchanged, 0 faces"],
            [BUCKET, "uploads/old/readme.txt", "", "failed", "PermanentFailure", "", "invalid_image"],
            [BUCKET, "uploads/old/2.jpg", "", "failed", "TemporaryFailure", "", "SlowDown"]]
    report = io.StringIO()
    csv.writer(report).writerows(rows)
    s3.put_object(Bucket=OUT, Key="batch/reports/job-1/results/a.csv", Body=report.getvalue().encode())
    s3.put_object(Bucket=OUT, Key="batch/reports/job-1/manifest.json", Body=json.dumps({
        "Format": "Report_CSV_20180820", "ReportCreationDate": "2026-12-02T16:00:00Z", "ReportSchema": "",
        "Results": [{"TaskExecutionStatus": "succeeded", "Bucket": OUT, "MD5Checksum": "x",
                     "Key": "batch/reports/job-1/results/a.csv"}]}).encode())
    totals = backfill.summarize_report(s3, OUT, "batch/reports/job-1/manifest.json", "job-1")
    assert (totals["images"], totals["faces"], totals["bad_images"], totals["storage_failures"]) == (3, 2, 1, 1)
    assert totals["gender"] == {"female": 1, "male": 1, "unknown": 0}
    assert totals["failures_by_code"] == {"SlowDown": 1, "invalid_image": 1} and totals["found_rate"] == 0.5

    # ResultWriter's output: manifest.json naming SUCCEEDED_0.json, each child's Output our handler's answer.
    from handler import aws
    items = [{"Etag": o["ETag"], "Key": o["Key"], "Size": o["Size"]}
             for o in s3.list_objects_v2(Bucket=BUCKET, Prefix="uploads/old/")["Contents"]]
    output = aws.handle_map_batch({"BatchInput": {"bucket": BUCKET}, "Items": items})
    s3.put_object(Bucket=OUT, Key="batch/map-results/run-1/SUCCEEDED_0.json",
                  Body=json.dumps([{"Status": "SUCCEEDED", "Output": json.dumps(output)}]).encode())
    s3.put_object(Bucket=OUT, Key="batch/map-results/run-1/manifest.json", Body=json.dumps({
        "DestinationBucket": OUT, "MapRunArn": "arn", "ResultFiles": {
            "FAILED": [], "PENDING": [], "SUCCEEDED": [{"Key": "batch/map-results/run-1/SUCCEEDED_0.json"}]}}).encode())
    totals = backfill.summarize_map_results(s3, OUT, "batch/map-results/run-1/manifest.json", "map-1")
    assert (totals["images"], totals["bad_images"], totals["skipped"]) == (7, 1, 1)  # + the folder placeholder
    assert json.loads(s3.get_object(Bucket=OUT, Key="batch/summaries/map-1/summary.json")["Body"].read()) == totals
