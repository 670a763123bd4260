"""The Cloud Storage trigger: gcp-storage-emulator + a real functions-framework CloudEvent server."""

from __future__ import annotations

import copy
import json

import pytest
from google.auth.credentials import AnonymousCredentials
from google.cloud import storage
from helpers import fixture_bytes, load_event
from http_client import call
from servers import functions_framework, gcs_emulator

BUCKET = "faceread-input"


@pytest.fixture(scope="module")
def gcs():
    with gcs_emulator() as emulator:
        env = {"STORAGE_EMULATOR_HOST": emulator, "GOOGLE_CLOUD_PROJECT": "local"}
        mp = pytest.MonkeyPatch()
        mp.setenv("STORAGE_EMULATOR_HOST", emulator)
        client = storage.Client(project="local", credentials=AnonymousCredentials())
        bucket = client.create_bucket(BUCKET)
        with functions_framework("gcs_finalized", "cloudevent", env=env, ready_path="/") as url:
            yield bucket, url
        mp.undo()


def deliver(url: str, name: str, size: int, bucket=None) -> int:
    """POST a structured-mode CloudEvent, as Eventarc does (with the object's own generation and ETag
    when `bucket` holds it: the flow commits a result only while the object is still that generation)."""
    sample = copy.deepcopy(load_event("gcsFinalizedCloudEvent.json"))
    blob = bucket.get_blob(name) if bucket else None
    facts = {"generation": str(blob.generation), "etag": blob.etag} if blob else {}
    event = {**sample["attributes"], "subject": f"objects/{name}",
             "data": {**sample["data"], "bucket": BUCKET, "name": name, "size": str(size), **facts}}
    status, _, _ = call(url, json.dumps(event).encode(), "POST", {"Content-Type": "application/cloudevents+json"})
    return status


def test_upload_writes_image_then_json(gcs) -> None:
    bucket, url = gcs
    name = "uploads/My Photoé.png"
    bucket.blob(name).upload_from_string(fixture_bytes("camera.png"), content_type="image/png")
    assert deliver(url, name, 1, bucket) == 200
    result = json.loads(bucket.blob("results/My Photoé.png.json").download_as_bytes())
    assert result["faces_detected"] == 1 and result["faces"][0]["gender"]["value"] == "male"
    assert bucket.blob(result["annotated_image"]["key"]).download_as_bytes()[:2] == b"\xff\xd8"
    assert bucket.blob(name).download_as_bytes() == fixture_bytes("camera.png")


def test_outputs_folders_and_empty_objects(gcs) -> None:
    bucket, url = gcs
    before = {b.name for b in bucket.list_blobs()}
    assert deliver(url, "results/My Photoé.png.json", 10) == 200  # our own output: ignored
    assert deliver(url, "uploads/folder/", 0) == 200  # a folder placeholder: ignored
    assert {b.name for b in bucket.list_blobs()} == before
    bucket.blob("uploads/empty.jpg").upload_from_string(b"")
    assert deliver(url, "uploads/empty.jpg", 0, bucket) == 200
    result = json.loads(bucket.blob("results/empty.jpg.json").download_as_bytes())
    assert result["error"]["code"] == "empty_image"
