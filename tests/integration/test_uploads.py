"""Phone photos over HTTP: the request-body limit's answer, and presigned uploads on moto and the emulator.

A body over config.DIRECT_IMAGE_LIMIT gets a 413 naming the limit and POST /uploads, through every edge.
POST /uploads returns a presigned upload into the input prefix; the test sends the photo the way a
browser or the CLI does (a real multipart form POST to moto's S3; a real PUT of the signed URL to
gcp-storage-emulator), runs the upload trigger on the object, and polls GET /uploads/<id> to the result.
Neither moto nor the emulator checks a policy's conditions or a URL's signature: that the size and type
are pinned is read from the form and the URL themselves.
"""

from __future__ import annotations

import base64
import copy
import dataclasses
import json
import subprocess
import sys
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from helpers import big_photo, fixture_bytes, load_event
from http_client import call
from servers import ROOT

from handler import aws, http_api
from handler.config import DIRECT_IMAGE_LIMIT, SETTINGS
from handler.gcs_store import GcsStore
from handler.http_api import HttpRequest, handle
from handler.storage import ObjectInfo
from handler.storage_trigger import process_object
from handler.uploads import GcsUploads

IN, OUT = "faceread-uploads-in", "faceread-uploads-out"


@pytest.fixture(scope="module")
def photo() -> bytes:
    data = big_photo()
    assert len(data) > DIRECT_IMAGE_LIMIT
    return data


def lambda_http(method: str, path: str, body: bytes = b"", content_type: str = "application/json") -> tuple[int, dict]:
    """An HTTP API (v2) event through the real Lambda handler; (status, JSON body)."""
    event = copy.deepcopy(load_event("apiGatewayProxyV2Event.json"))
    event["headers"] = {**{k: v for k, v in event["headers"].items() if k != "content-type"},
                        "content-type": content_type}
    event["rawPath"], event["rawQueryString"] = path, ""
    event["requestContext"]["http"].update(method=method, path=path)
    event["routeKey"] = event["requestContext"]["routeKey"] = f"{method} {path}"
    binary = not content_type.startswith("application/json")
    event["body"] = base64.b64encode(body).decode() if binary else body.decode()
    event["isBase64Encoded"] = binary
    response = aws.lambda_handler(event, None)
    return response["statusCode"], json.loads(response["body"])


def check_413(status: int, answer: dict) -> None:
    assert status == 413, answer
    error = answer["error"]
    assert error["code"] == "payload_too_large" and error["limit_bytes"] == DIRECT_IMAGE_LIMIT
    assert error["upload_route"] == "POST /uploads"
    assert f"{DIRECT_IMAGE_LIMIT:,} bytes" in error["message"] and "POST /uploads" in error["message"]


def test_a_body_over_the_limit_gets_a_413_naming_it_and_the_upload_route(http_server: str, photo: bytes) -> None:
    status, _, raw = call(http_server + "/analyze", photo, "POST", {"Content-Type": "image/jpeg"})
    check_413(status, json.loads(raw))  # functions-framework (Cloud Run)
    check_413(*lambda_http("POST", "/analyze", photo, "image/jpeg"))  # API Gateway HTTP API -> Lambda
    as_json = json.dumps({"image": base64.b64encode(photo).decode()}).encode()
    check_413(*lambda_http("POST", "/analyze", as_json))  # base64 in JSON: the same limit on the image
    # One byte under the limit still goes through (and is analysed: it is a real photo, cut short).
    status, answer = lambda_http("POST", "/analyze", photo[:DIRECT_IMAGE_LIMIT], "image/jpeg")
    assert status != 413, answer


@pytest.fixture
def s3_uploads(s3, monkeypatch):
    for bucket in (IN, OUT):
        try:
            s3.create_bucket(Bucket=bucket)
        except s3.exceptions.BucketAlreadyOwnedByYou:
            pass
    settings = dataclasses.replace(SETTINGS, upload_bucket=IN, output_bucket=OUT)
    monkeypatch.setattr(http_api, "SETTINGS", settings)  # the deployment's UPLOAD_BUCKET and OUTPUT_BUCKET
    return settings


def test_presigned_post_on_s3_then_the_trigger_then_the_poll(s3, s3_uploads, photo: bytes) -> None:
    status, grant = lambda_http("POST", "/uploads", json.dumps({"content_type": "image/jpeg",
                                                                "bytes": len(photo)}).encode())
    assert status == 201, grant
    form = grant["upload"]
    assert form["method"] == "POST" and grant["key"].startswith("uploads/http/")
    assert form["fields"]["key"] == grant["key"] and form["fields"]["Content-Type"] == "image/jpeg"
    policy = json.loads(base64.b64decode(form["fields"]["policy"]))
    assert ["content-length-range", 1, SETTINGS.max_image_bytes] in policy["conditions"]
    assert {"Content-Type": "image/jpeg"} in policy["conditions"] and {"key": grant["key"]} in policy["conditions"]

    assert lambda_http("GET", grant["poll"])[0] == 202  # nothing uploaded yet
    sent = requests.post(form["url"], data=form["fields"], files={"file": ("photo.jpg", photo, "image/jpeg")},
                         timeout=60)  # the form, as the page and the CLI send it
    assert sent.status_code == 204, sent.text
    assert lambda_http("GET", grant["poll"])[0] == 202  # uploaded, not yet analysed
    event = copy.deepcopy(load_event("s3EventEncodedKey.json"))  # the upload's S3 event (via SQS when deployed)
    record = event["Records"][0]
    record["s3"]["bucket"]["name"], record["s3"]["object"]["key"] = IN, grant["key"]
    del record["s3"]["object"]["eTag"], record["s3"]["object"]["size"]
    [summary] = aws.handle_s3(event, settings=s3_uploads)["records"]
    assert summary["status"] == "analyzed" and summary["result"] == grant["result"]["key"]

    status, done = lambda_http("GET", grant["poll"])
    assert status == 200 and done["status"] == "done", done
    assert done["result"]["faces_detected"] == 1 and done["result"]["input"]["bytes"] == len(photo)
    image = requests.get(done["image_url"], timeout=30)
    assert image.status_code == 200 and image.content[:3] == b"\xff\xd8\xff"


def test_upload_route_refusals(s3, s3_uploads, monkeypatch) -> None:
    upload = "/uploads"
    assert lambda_http("POST", upload, b'{"content_type": "image/heic"}')[0] == 415
    status, answer = lambda_http("POST", upload, json.dumps({"bytes": SETTINGS.max_image_bytes + 1}).encode())
    assert status == 413 and f"{SETTINGS.max_image_bytes:,}" in answer["error"]["message"]
    assert lambda_http("POST", upload, b'{"bytes": "big"}')[0] == 400
    assert lambda_http("POST", upload, b"[1]")[0] == 400
    assert lambda_http("GET", "/uploads/not-an-id")[0] == 404
    assert lambda_http("GET", "/uploads/" + "0" * 32)[0] == 202  # a well-formed id: pending until a result exists
    monkeypatch.setattr(http_api, "SETTINGS", dataclasses.replace(SETTINGS, upload_bucket=""))
    status, answer = lambda_http("POST", upload, b"{}")
    assert status == 501 and answer["error"]["code"] == "uploads_not_configured"


@pytest.fixture(scope="module")
def gcs():
    """gcp-storage-emulator with the two buckets, an anonymous client, and a service-account key that signs
    (the emulator checks no signature; on Cloud Run the library signs through IAM signBlob instead)."""
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage
    from google.oauth2 import service_account
    from servers import gcs_emulator
    from upload_stack import signing_key

    signer = service_account.Credentials.from_service_account_info(signing_key())
    with gcs_emulator() as host:
        mp = pytest.MonkeyPatch()
        mp.setenv("STORAGE_EMULATOR_HOST", host)
        client = storage.Client(project="local", credentials=AnonymousCredentials())
        for bucket in (IN, OUT):
            client.create_bucket(bucket)
        yield client, signer
        mp.undo()


def test_signed_put_on_cloud_storage_then_the_trigger_then_the_poll(gcs, photo: bytes, monkeypatch) -> None:
    client, signer = gcs
    settings = dataclasses.replace(SETTINGS, upload_bucket=IN, output_bucket=OUT)
    monkeypatch.setattr(http_api, "SETTINGS", settings)

    def ask(method: str, path: str, body: bytes = b"") -> tuple[int, dict]:
        answer = handle(HttpRequest(method, path, {"content-type": "application/json"}, {}, body),
                        lambda: GcsUploads(client, signer))
        return answer.status, json.loads(answer.body)

    status, grant = ask("POST", "/uploads", b'{"content_type": "image/jpeg"}')
    assert status == 201, grant
    put = grant["upload"]
    assert put["method"] == "PUT"
    signed = parse_qs(urlsplit(put["url"]).query)
    assert signed["X-Goog-Algorithm"] == ["GOOG4-RSA-SHA256"] and int(signed["X-Goog-Expires"][0]) == 900
    assert set(signed["X-Goog-SignedHeaders"][0].split(";")) >= {"content-type", "x-goog-content-length-range"}
    assert put["headers"]["x-goog-content-length-range"] == f"1,{SETTINGS.max_image_bytes}"
    sent = requests.put(put["url"], data=photo, headers=put["headers"], timeout=60)
    assert sent.status_code == 200, sent.text
    assert ask("GET", grant["poll"])[0] == 202
    blob = client.bucket(IN).get_blob(grant["key"])  # the finalized event's facts
    source = ObjectInfo(size=blob.size, etag=blob.etag, version=str(blob.generation))
    assert process_object(GcsStore(client), IN, grant["key"], settings, source=source)["status"] == "analyzed"
    status, done = ask("GET", grant["poll"])
    assert status == 200 and done["result"]["faces_detected"] == 1, done
    assert "X-Goog-Signature" in done["image_url"]
    image = requests.get(done["image_url"], timeout=30)
    assert image.status_code == 200 and image.content[:3] == b"\xff\xd8\xff"


def test_the_direct_limit_fits_lambdas_payload() -> None:
    """4 bytes per 3 plus the event's envelope must stay under Lambda's 6 MB (config.DIRECT_IMAGE_LIMIT)."""
    assert DIRECT_IMAGE_LIMIT * 4 // 3 + 128 * 1024 <= 6 * 1024 * 1024


def test_the_cli_sends_a_big_photo_through_the_upload_route(photo: bytes, tmp_path) -> None:
    """`python -m handler photo --url`: direct when the photo fits, through POST /uploads when it doesn't."""
    from upload_stack import gcs_upload_stack

    (tmp_path / "big.jpg").write_bytes(photo)
    (tmp_path / "small.png").write_bytes(fixture_bytes("camera.png"))
    with gcs_upload_stack(tmp_path) as base:
        def cli(name: str) -> dict:
            done = subprocess.run([sys.executable, "-m", "handler", str(tmp_path / name), "--url", base], cwd=ROOT,
                                  capture_output=True, text=True, timeout=300)
            assert done.returncode == 0, done.stderr[-2000:]
            return json.loads(done.stdout)
        big = cli("big.jpg")
        assert big["status"] == "done" and big["result"]["faces_detected"] == 1
        sent = big["result"]["input"]
        assert sent["bytes"] == len(photo) and sent["key"].startswith("uploads/http/")
        small = cli("small.png")
        assert small["faces_detected"] == 1 and "input" not in small  # POST /analyze's own answer
