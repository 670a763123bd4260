"""The Lambda zip runs on its own: unpacked into an empty folder, imported by a bare python3.12.

`sys.path` is that folder plus the standard library, plus boto3 standing in for
what the Lambda runtime provides. The process is invoked with a real API Gateway
event and a real S3 event against moto in server mode.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import boto3
import pytest
from helpers import fixture_bytes, load_event
from servers import moto_server

ROOT = Path(__file__).resolve().parents[2]
ZIP = ROOT / "build" / "faceread-lambda.zip"
sys.path.insert(0, str(ROOT / "infra"))
from package.smoke import find_python, runtime_provided_dir  # noqa: E402
from package.stage import stage_app  # noqa: E402

PYTHON312 = find_python("3.12", None)

INVOKE = r"""
import json, sys, time
task, runtime, events = sys.argv[1], sys.argv[2], json.loads(sys.stdin.read())
sys.path[:] = [task] + [p for p in sys.path if p and 'site-packages' not in p] + [runtime]
t0 = time.perf_counter()
import handler.aws
warmed_ms = (time.perf_counter() - t0) * 1000
out = {"warmed_ms": warmed_ms, "file": handler.aws.__file__, "results": []}
for event in events:
    out["results"].append(handler.aws.lambda_handler(event, None))
print("RESULT " + json.dumps(out))
"""


@pytest.fixture(scope="module")
def unpacked(tmp_path_factory) -> tuple[Path, Path]:
    if not ZIP.is_file():
        pytest.fail(f"{ZIP} is missing: run `make package` (make test does)")
    if PYTHON312 is None:
        pytest.skip("python3.12 (the Lambda runtime's version) is not installed here")
    root = tmp_path_factory.mktemp("lambda")
    task = root / "task"
    with zipfile.ZipFile(ZIP) as zf:
        zf.extractall(task)
        for info in zf.infolist():
            os.chmod(task / info.filename, (info.external_attr >> 16) & 0o777)
    return task, runtime_provided_dir(root / "runtime")


def test_zip_holds_handler_whole_and_no_dev_tool() -> None:
    """handler/ ships whole (unit/test_reachable.py keeps dev tools out of it); evaluation/ (`make eval`
    imports the reference package) and tools/ never ship."""
    if not ZIP.is_file():
        pytest.fail(f"{ZIP} is missing: run `make package` (make test does)")
    with zipfile.ZipFile(ZIP) as zf:
        names = zf.namelist()
    shipped = {n for n in names if n.startswith("handler/") and n.endswith(".py")}
    source = {f"handler/{p.relative_to(ROOT / 'handler').as_posix()}" for p in (ROOT / "handler").rglob("*.py")}
    assert shipped == source
    assert not [n for n in names if n.startswith(("evaluation/", "tools/"))]


def test_zip_and_image_tree_are_the_same(tmp_path: Path) -> None:
    """The zip's handler/ and models/ are, byte for byte, the tree `make app` stages for the
    container image and the Cloud Run sources (tests/unit/test_dockerfile.py follows it into the image)."""
    if not ZIP.is_file():
        pytest.fail(f"{ZIP} is missing: run `make package` (make test does)")
    stage_app(ROOT / "handler", ROOT / "models", tmp_path)
    staged = {p.relative_to(tmp_path).as_posix(): p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    with zipfile.ZipFile(ZIP) as zf:
        zipped = {n: zf.read(n) for n in zf.namelist()
                  if n.startswith(("handler/", "models/")) and "__pycache__/" not in n}
    assert sorted(zipped) == sorted(staged)
    assert [n for n in staged if zipped[n] != staged[n]] == []


def test_package_runs_api_gateway_and_s3_events(unpacked) -> None:
    task, runtime = unpacked
    http = load_event("apiGatewayProxyV2Event.json")
    http.update(body=base64.b64encode(fixture_bytes("camera.png")).decode(), isBase64Encoded=True)
    http["headers"]["content-type"] = "image/png"
    s3_event = load_event("s3EventEncodedKey.json")
    bucket = s3_event["Records"][0]["s3"]["bucket"]["name"]
    with moto_server() as endpoint:
        env = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1",
               "AWS_ENDPOINT_URL_S3": endpoint, "PATH": os.environ["PATH"]}
        s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                          aws_access_key_id="testing", aws_secret_access_key="testing")
        s3.create_bucket(Bucket=bucket)
        s3.put_object(Bucket=bucket, Key="uploads/My Photoé.jpg", Body=fixture_bytes("astronaut.png"))
        # The event names the object it announces (the sample's eTag is another object's: the flow would
        # take the upload for superseded and write nothing).
        head = s3.head_object(Bucket=bucket, Key="uploads/My Photoé.jpg")
        s3_event["Records"][0]["s3"]["object"].update(eTag=head["ETag"].strip('"'), size=head["ContentLength"])
        proc = subprocess.run([PYTHON312, "-S", "-E", "-s", "-c", INVOKE, str(task), str(runtime)],
                              input=json.dumps([http, s3_event]), capture_output=True, text=True, env=env,
                              cwd=task, timeout=180)
        assert proc.returncode == 0, proc.stderr[-2000:]
        out = json.loads(proc.stdout.split("RESULT ", 1)[1])
        stored = s3.get_object(Bucket=bucket, Key="results/My Photoé.jpg.json")["Body"].read()
    assert out["file"].startswith(str(task))
    http_response, s3_summary = out["results"]
    assert http_response["statusCode"] == 200
    body = json.loads(http_response["body"])
    assert body["cold_start"] is True and body["faces"][0]["gender"]["value"] == "male"
    assert s3_summary["records"][0]["status"] == "analyzed"
    assert json.loads(stored)["faces"][0]["gender"]["value"] == "female"
    # Recorded for the benchmark table (make bench prints it).
    (ROOT / "build" / "package-import.json").write_text(json.dumps({"import_to_warmed_ms": out["warmed_ms"]}))


def test_the_operators_bulk_tool_is_not_in_the_zip() -> None:
    """bulk/ drives s3control, Step Functions and CloudFormation from an operator's machine: it never ships."""
    if not ZIP.is_file():
        pytest.fail(f"{ZIP} is missing: run `make package` (make test does)")
    with zipfile.ZipFile(ZIP) as zf:
        names = zf.namelist()
    assert not [n for n in names if n.startswith("bulk/") or n.endswith("backfill.py")]
    assert "handler/storage.py" in names and "handler/options.py" in names and "handler/facts.py" in names
