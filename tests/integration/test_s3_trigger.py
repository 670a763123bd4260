"""The S3 upload trigger against moto in server mode on 127.0.0.1 (a real S3 endpoint for boto3)."""

from __future__ import annotations

import copy
import dataclasses
import json
from urllib.parse import quote_plus

import cv2
import numpy as np
import pytest
from helpers import fixture_bytes, image_key, load_event, without_tokens

from handler import aws, runtime
from handler.config import SETTINGS
from handler.pipeline import detect_faces
from handler.redact import REDACT_MIN_CONFIDENCE

IN, OUT = "faceread-input", "faceread-output"


@pytest.fixture(scope="module", autouse=True)
def buckets(s3) -> None:
    s3.create_bucket(Bucket=IN)
    s3.create_bucket(Bucket=OUT)


def s3_event(key: str, bucket: str = IN, name: str = "ObjectCreated:Put") -> dict:
    """The real S3 notification sample with our bucket and the key URL-encoded as S3 sends it."""
    event = copy.deepcopy(load_event("s3EventEncodedKey.json"))
    record = event["Records"][0]
    record["eventName"] = name
    record["s3"]["bucket"]["name"] = bucket
    record["s3"]["object"]["key"] = quote_plus(key, safe="/")
    # The sample's eTag and size describe another object: without them the flow HEADs the real one.
    del record["s3"]["object"]["eTag"], record["s3"]["object"]["size"]
    return event


def objects(client, bucket: str) -> dict[str, bytes]:
    listing = client.list_objects_v2(Bucket=bucket).get("Contents", [])
    return {o["Key"]: client.get_object(Bucket=bucket, Key=o["Key"])["Body"].read() for o in listing}


def test_encoded_key_is_decoded_and_outputs_written(s3) -> None:
    key = "uploads/My Photoé+1.png"
    photo = fixture_bytes("camera.png")
    s3.put_object(Bucket=IN, Key=key, Body=photo)
    summary = aws.lambda_handler(s3_event(key), None)
    assert summary["records"][0]["status"] == "analyzed"
    stored = objects(s3, IN)
    assert stored[key] == photo  # input untouched
    result = json.loads(stored["results/My Photoé+1.png.json"])
    assert result["faces_detected"] == 1 and result["input"]["key"] == key
    assert stored[image_key("results/My Photoé+1.png.json", stored)][:3] == b"\xff\xd8\xff"
    assert "timings_ms" not in result  # stored results are deterministic

    # At-least-once delivery: the same event again gives identical outputs.
    aws.lambda_handler(s3_event(key), None)
    assert objects(s3, IN) == stored


def test_write_redacted_puts_a_redacted_jpeg_beside_the_annotated_one(s3) -> None:
    key = "uploads/team photo.png"
    s3.put_object(Bucket=IN, Key=key, Body=fixture_bytes("astronaut.png"))
    settings = dataclasses.replace(SETTINGS, write_redacted=True)
    assert aws.handle_s3(s3_event(key), settings=settings)["records"][0]["status"] == "analyzed"
    stored = objects(s3, IN)
    result = json.loads(stored["results/team photo.png.json"])
    redacted_key = result["redacted_image"]["key"]
    assert result["redacted_image"]["bucket"] == IN
    assert redacted_key == image_key("results/team photo.png.json", stored).replace(".annotated.", ".redacted.")
    assert len(result["redacted_regions"]) == 1
    redacted = cv2.imdecode(np.frombuffer(stored[redacted_key], np.uint8), cv2.IMREAD_COLOR)
    assert redacted.shape == (512, 512, 3)
    assert detect_faces(redacted, runtime.get_models(), REDACT_MIN_CONFIDENCE) == []
    # The redacted image is an output: its own event is skipped, like every result.
    assert aws.lambda_handler(s3_event(redacted_key), None)["records"][0]["status"] == \
        "skipped"


def test_output_keys_never_retrigger(s3) -> None:
    before = objects(s3, IN)
    s3.put_object(Bucket=IN, Key="results/x.png.json", Body=b"{}")
    summary = aws.lambda_handler(s3_event("results/x.png.json"), None)
    assert summary["records"][0] == {"key": "results/x.png.json", "status": "skipped", "reason": "output_prefix"}
    assert set(objects(s3, IN)) == set(before) | {"results/x.png.json"}


def test_separate_output_bucket(s3) -> None:
    settings = dataclasses.replace(SETTINGS, output_bucket=OUT)
    s3.put_object(Bucket=IN, Key="uploads/a.png", Body=fixture_bytes("astronaut.png"))
    aws.handle_s3(s3_event("uploads/a.png"), settings=settings)
    assert {"results/a.png.json", "results/a.png.annotated.jpg"} <= without_tokens(objects(s3, OUT))
    # An event from the output bucket itself is ignored, whatever the key.
    summary = aws.handle_s3(s3_event("uploads/a.png", bucket=OUT), settings=settings)
    assert summary["records"][0]["reason"] == "output_bucket"


def test_not_an_image_writes_error_result(s3) -> None:
    s3.put_object(Bucket=IN, Key="uploads/notes.txt", Body=b"not an image")
    summary = aws.lambda_handler(s3_event("uploads/notes.txt"), None)
    assert summary["records"][0]["status"] == "error"
    result = json.loads(objects(s3, IN)["results/notes.txt.json"])
    assert result["error"]["code"] == "invalid_image"
    assert [k for k in objects(s3, IN) if k.startswith("results/notes.txt")] == ["results/notes.txt.json"]


def test_deleted_object_and_non_create_events_are_skipped(s3) -> None:
    summary = aws.lambda_handler(s3_event("uploads/gone.png"), None)
    assert summary["records"][0]["reason"] == "object_missing"
    summary = aws.lambda_handler(s3_event("uploads/a.png", name="ObjectRemoved:Delete"), None)
    assert summary["records"][0]["reason"] == "not_object_created"


class FailingGet(aws.S3Store):
    """The real store, except that reading one key fails (a network fault)."""

    def get(self, bucket: str, key: str, version: str | None = None) -> bytes:
        if key == "uploads/flaky.png":
            raise ConnectionError("injected fault")
        return super().get(bucket, key, version)


def test_storage_failure_raises_for_retry_after_other_records(s3) -> None:
    s3.put_object(Bucket=IN, Key="uploads/ok.png", Body=fixture_bytes("camera.png"))
    s3.put_object(Bucket=IN, Key="uploads/flaky.png", Body=fixture_bytes("camera.png"))
    event = s3_event("uploads/ok.png")
    event["Records"].insert(0, s3_event("uploads/flaky.png")["Records"][0])
    with pytest.raises(ConnectionError):
        aws.handle_s3(event, store=FailingGet(s3))
    stored = objects(s3, IN)
    assert "results/ok.png.json" in stored  # the healthy record was still processed
    assert "results/flaky.png.json" not in stored


class FailingJsonPut(aws.S3Store):
    """The real store, except that the first JSON write fails (a network fault)."""

    failures = 1

    def put(self, bucket: str, key: str, body: bytes, content_type: str, metadata: dict | None = None,
            **condition) -> None:
        if key.endswith(".json") and self.failures:
            self.failures -= 1
            raise ConnectionError("injected fault")
        super().put(bucket, key, body, content_type, metadata, **condition)


def test_json_write_failure_is_completed_by_the_retry(s3) -> None:
    s3.put_object(Bucket=IN, Key="uploads/pair.png", Body=fixture_bytes("astronaut.png"))
    store = FailingJsonPut(s3)
    with pytest.raises(ConnectionError):
        aws.handle_s3(s3_event("uploads/pair.png"), store=store)
    assert "results/pair.png.json" not in objects(s3, IN)  # no commit marker without its pair
    aws.handle_s3(s3_event("uploads/pair.png"), store=store)  # Lambda's retry
    stored = objects(s3, IN)
    assert {"results/pair.png.json", "results/pair.png.annotated.jpg"} <= without_tokens(stored)
