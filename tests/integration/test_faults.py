"""Faults the bulk paths promise to survive, shown with real parts: moto's S3 and SQS in server mode
on 127.0.0.1, the real handler, real nets on real photos, real threads.

- A poison upload (an object S3 stores but won't serve: GLACIER) is retried until the upload queue's
  redrive policy moves it to the dead-letter queue, while the good uploads of its batch are done
  once and never redelivered (ReportBatchItemFailures). The queue is polled the way Lambda's event
  source mapping does it: receive, invoke, delete what the answer doesn't list as failed, leave the
  rest to come back after the visibility timeout (which the test lets elapse at once).
- A Batch Operations task whose object vanished mid-job (before its task ran, or between the
  handler's HEAD and its GET) is a PermanentFailure and leaves no result behind.
- Several workers given the same object at once (at-least-once delivery, a redriven message, a
  Batch Operations retry) leave one result: every write of the JSON and of the image is the same
  bytes, and a reader polling meanwhile never sees a torn or mismatched result.
- An object overwritten while its older version's analysis is still writing (held before its image,
  or before its JSON commit) ends with the newer version's JSON beside the image it names, and no
  orphaned image: on moto and on gcp-storage-emulator (docs/storage.md, "Overwrites").
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import threading
import time
from urllib.parse import quote_plus

import boto3
import cv2
import numpy as np
import pytest
from deploy_files import load_template
from helpers import fixture_bytes, load_event, without_tokens

from handler import aws
from handler.gcs_store import GcsStore

BUCKET = "faceread-faults"
# Longer than any invocation here takes, as the template's 6 x FunctionTimeout is; the test skips
# the clock for the messages the handler reports failed (their visibility timeout "elapses" at once).
VISIBILITY_S = 60


@pytest.fixture(scope="module", autouse=True)
def bucket(s3) -> None:
    s3.create_bucket(Bucket=BUCKET)


def keys_under(s3, bucket: str, prefix: str) -> set[str]:
    return {o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])}


# ----------------------------------------------------------------------------------- (a) poison upload
@pytest.fixture(scope="module")
def upload_queue(s3):
    """The template's queue pair on moto: redrive after UploadMaxReceiveCount (its default) receives."""
    max_receives = int(load_template()["Parameters"]["UploadMaxReceiveCount"]["Default"])
    sqs = boto3.client("sqs", endpoint_url=s3.meta.endpoint_url)
    dlq = sqs.create_queue(QueueName="faults-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    queue = sqs.create_queue(QueueName="faults-uploads", Attributes={
        "VisibilityTimeout": str(VISIBILITY_S),
        "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(max_receives)})})
    queue = queue["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    s3.create_bucket(Bucket="faceread-faults-queued")
    s3.put_bucket_notification_configuration(Bucket="faceread-faults-queued", NotificationConfiguration={
        "QueueConfigurations": [{"QueueArn": arn, "Events": ["s3:ObjectCreated:*"]}]})
    return sqs, queue, dlq, max_receives


def lambda_poll(sqs, queue: str) -> dict:
    """One ReceiveMessage, shaped into the event Lambda's SQS event source mapping invokes with."""
    messages = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, AttributeNames=["All"],
                                   WaitTimeSeconds=0).get("Messages", [])
    sample = load_event("sqsS3Event.json")["Records"][0]
    return {"Records": [{**sample, "messageId": m["MessageId"], "receiptHandle": m["ReceiptHandle"],
                         "body": m["Body"], "attributes": m["Attributes"], "md5OfBody": m["MD5OfBody"]}
                        for m in messages]}


def upload_key(record: dict) -> str:
    body = json.loads(record["body"])
    return aws.s3_records(body)[0].key if "Records" in body else body.get("Event", "?")


def test_poison_upload_ends_in_the_dlq_and_good_ones_are_not_redelivered(s3, upload_queue) -> None:
    sqs, queue, dlq, max_receives = upload_queue
    good = ["uploads/good-1.png", "uploads/good-2.png"]
    for key in good:
        s3.put_object(Bucket="faceread-faults-queued", Key=key, Body=fixture_bytes("camera.png"))
    # Stored, notified, but unreadable until restored: GetObject answers InvalidObjectState, every time.
    s3.put_object(Bucket="faceread-faults-queued", Key="uploads/poison.png", Body=fixture_bytes("camera.png"),
                  StorageClass="GLACIER")

    received: dict[str, list[str]] = {}  # upload key -> ApproximateReceiveCount of each delivery
    batches = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        event = lambda_poll(sqs, queue)
        if not event["Records"]:
            break  # nothing visible, and nothing in flight: every failure was made visible again below
        answer = aws.lambda_handler(event, None)
        failed = {f["itemIdentifier"] for f in answer["batchItemFailures"]}
        batches.append(sorted(upload_key(r) for r in event["Records"]))
        for record in event["Records"]:
            received.setdefault(upload_key(record), []).append(record["attributes"]["ApproximateReceiveCount"])
            if record["messageId"] not in failed:  # Lambda deletes what succeeded, nothing else
                sqs.delete_message(QueueUrl=queue, ReceiptHandle=record["receiptHandle"])
            else:  # the visibility timeout elapses: the message may be received again
                sqs.change_message_visibility(QueueUrl=queue, ReceiptHandle=record["receiptHandle"],
                                              VisibilityTimeout=0)

    # One batch held the poison and both good uploads; only the poison came back.
    assert {"uploads/poison.png", *good} <= set(batches[0])
    assert all(received[key] == ["1"] for key in good), received
    assert received["uploads/poison.png"] == [str(n) for n in range(1, max_receives + 1)]
    dead = sqs.receive_message(QueueUrl=dlq, MaxNumberOfMessages=10).get("Messages", [])
    assert [aws.s3_records(json.loads(m["Body"]))[0].key for m in dead] == ["uploads/poison.png"]
    # The good uploads were analysed (once each); the poison left no result.
    assert without_tokens(keys_under(s3, "faceread-faults-queued", "results/")) == {
        "results/good-1.png.json", "results/good-1.png.annotated.jpg",
        "results/good-2.png.json", "results/good-2.png.annotated.jpg"}


# --------------------------------------------------------------------------- (b) vanished mid-job
def batch_task(key: str, task_id: str) -> dict:
    """A schema 2.0 Batch Operations invocation for one task, as S3 sends it (the key URL-encoded)."""
    event = copy.deepcopy(load_event("s3BatchOperationEventSchemaV2.json"))
    task = event["tasks"][0]
    task.update(taskId=task_id, s3Key=quote_plus(key, safe="/"), s3VersionId=None, s3Bucket=BUCKET)
    event["job"]["userArguments"] = {}
    return event


class DeletesBetweenHeadAndGet(aws.S3Store):
    """The real S3 store; the object is deleted (for real) right after the handler's HEAD of it."""

    def __init__(self, client, victim: str) -> None:
        super().__init__(client)
        self.victim = victim

    def head(self, bucket, key):
        info = super().head(bucket, key)
        if key == self.victim:
            self.client.delete_object(Bucket=bucket, Key=key)
        return info


def test_object_vanished_mid_job_is_a_permanent_failure_with_no_result(s3) -> None:
    keys = [f"uploads/job/{name}.png" for name in ("first", "deleted-before", "deleted-during", "last")]
    for key in keys:
        s3.put_object(Bucket=BUCKET, Key=key, Body=fixture_bytes("camera.png"))
    results = {}
    for n, key in enumerate(keys):  # the job's tasks, one invocation each, in manifest order
        store = aws.S3Store(s3)
        if key.endswith("deleted-before.png"):
            s3.delete_object(Bucket=BUCKET, Key=key)  # listed in the manifest, gone before its task
        elif key.endswith("deleted-during.png"):
            store = DeletesBetweenHeadAndGet(s3, key)
        [result] = aws.handle_batch_operations(batch_task(key, f"task-{n}"), store=store)["results"]
        results[key.rsplit("/", 1)[1]] = (result["resultCode"], result["resultString"])

    assert results["deleted-before.png"] == ("PermanentFailure", "object_missing")
    assert results["deleted-during.png"] == ("PermanentFailure", "object_missing")
    assert results["first.png"][0] == results["last.png"][0] == "Succeeded"
    assert without_tokens(keys_under(s3, BUCKET, "results/job/")) == {
        "results/job/first.png.json", "results/job/first.png.annotated.jpg",
        "results/job/last.png.json", "results/job/last.png.annotated.jpg"}


def test_a_listed_size_over_the_limit_for_a_gone_object_writes_no_error_result(s3) -> None:
    """A Distributed Map item claims a Size over MAX_IMAGE_BYTES, but the object was deleted after the
    listing: the claim is checked with a HEAD, so it is `object_missing`, not a payload_too_large JSON."""
    key = "uploads/job/huge-then-gone.jpg"
    batch = {"BatchInput": {"bucket": BUCKET},
             "Items": [{"Key": key, "Etag": '"0123456789abcdef0123456789abcdef"', "Size": 10**12}]}
    [result] = aws.handle_map_batch(batch, store=aws.S3Store(s3))["results"]
    assert result == {"key": key, "status": "skipped", "reason": "object_missing"}
    assert "results/job/huge-then-gone.jpg.json" not in keys_under(s3, BUCKET, "results/job/")


# --------------------------------------------------------------------- (c) same object, many workers
def test_workers_given_the_same_object_write_one_result(s3) -> None:
    out = "faceread-faults-out"  # versioned, so every write the workers make can be read back
    s3.create_bucket(Bucket=out)
    s3.put_bucket_versioning(Bucket=out, VersioningConfiguration={"Status": "Enabled"})
    key, json_key = "uploads/twice.jpg", "results/twice.jpg.json"
    s3.put_object(Bucket=BUCKET, Key=key, Body=fixture_bytes("astronaut.png"))
    etag = s3.head_object(Bucket=BUCKET, Key=key)["ETag"].strip('"')
    settings = dataclasses.replace(aws.SETTINGS, output_bucket=out)

    workers, start = 4, threading.Barrier(5)
    done, torn, reads = threading.Event(), [], []

    def reader() -> None:
        # Polls the result while the workers write: every JSON read is whole, names this source,
        # and the image it points at is there and decodes.
        start.wait()
        while not done.is_set():
            try:
                body = s3.get_object(Bucket=out, Key=json_key)["Body"].read()
            except s3.exceptions.NoSuchKey:
                continue
            try:
                result = json.loads(body)
                assert result["input"]["etag"] == etag and result["faces_detected"] == 1
                image = s3.get_object(Bucket=out, Key=result["annotated_image"]["key"])["Body"].read()
                assert cv2.imdecode(np.frombuffer(image, np.uint8), cv2.IMREAD_COLOR) is not None
                reads.append(len(body))
            except Exception as exc:  # noqa: BLE001 - collected and reported below
                torn.append(repr(exc))

    def worker(outcomes: list) -> None:
        start.wait()
        summary, exc = aws.run_one(aws.S3Store(s3), BUCKET, key, settings)
        outcomes.append((summary["status"], exc))

    outcomes: list = []
    threads = [threading.Thread(target=worker, args=(outcomes,)) for _ in range(workers)]
    watcher = threading.Thread(target=reader)
    for t in [*threads, watcher]:
        t.start()
    for t in threads:
        t.join(120)
    done.set()
    watcher.join(30)

    assert [exc for _, exc in outcomes] == [None] * workers
    assert {status for status, _ in outcomes} <= {"analyzed", "unchanged"}
    assert torn == [] and reads, (torn, len(reads))
    image_key = json.loads(s3.get_object(Bucket=out, Key=json_key)["Body"].read())["annotated_image"]["key"]
    assert keys_under(s3, out, "results/") == {json_key, image_key}  # one result, one image
    versions = s3.list_object_versions(Bucket=out, Prefix="results/")["Versions"]
    written: dict[str, set[str]] = {}
    for version in versions:
        written.setdefault(version["Key"], set()).add(version["ETag"])
    # However many workers wrote, they all wrote the same bytes: no version differs from another.
    assert {k: len(etags) for k, etags in written.items()} == {json_key: 1, image_key: 1}, written
    n_json = sum(1 for v in versions if v["Key"] == json_key)
    print(f"{workers} workers: {n_json} JSON writes ({sorted(s for s, _ in outcomes)}), {len(reads)} reads, "
          "all identical")


def recording(base: type):
    """A real store class (S3Store or GcsStore) that remembers what this worker wrote and can hold it
    before one write (the image, or the JSON commit) until the test lets it go."""

    class Recording(base):
        def __init__(self, client, hold_before: str | None = None) -> None:
            super().__init__(client)
            self.wrote: dict[str, bytes] = {}
            self.hold_before, self.reached, self.go = hold_before, threading.Event(), threading.Event()

        def put(self, bucket, key, body, content_type, metadata=None, **condition):
            if self.hold_before and key.endswith(self.hold_before):
                self.reached.set()
                assert self.go.wait(60)
            super().put(bucket, key, body, content_type, metadata, **condition)
            self.wrote[key] = body

    return Recording


@pytest.fixture(scope="module")
def gcs_bucket():
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage
    from servers import gcs_emulator

    with gcs_emulator() as host:
        mp = pytest.MonkeyPatch()
        mp.setenv("STORAGE_EMULATOR_HOST", host)
        yield storage.Client(project="local", credentials=AnonymousCredentials()).create_bucket(BUCKET)
        mp.undo()


class Bucket:
    """The same few calls on moto's S3 and on the Cloud Storage emulator, for the overwrite test."""

    def __init__(self, kind: str, s3, gcs) -> None:
        self.kind, self.s3, self.gcs = kind, s3, gcs
        self.store_class = recording(aws.S3Store if kind == "s3" else GcsStore)

    def store(self, **hold):
        return self.store_class(self.s3 if self.kind == "s3" else self.gcs.client, **hold)

    def upload(self, key: str, body: bytes) -> None:
        if self.kind == "s3":
            self.s3.put_object(Bucket=BUCKET, Key=key, Body=body)
        else:
            self.gcs.blob(key).upload_from_string(body)

    def read(self, key: str) -> bytes:
        if self.kind == "s3":
            return self.s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()
        return self.gcs.blob(key).download_as_bytes()

    def keys(self, prefix: str) -> set[str]:
        if self.kind == "s3":
            return keys_under(self.s3, BUCKET, prefix)
        return {b.name for b in self.gcs.list_blobs(prefix=prefix)}


# The emulator ignores ifGenerationMatch (gcp_storage_emulator/handlers/objects.py never reads it), so
# there the race that only the precondition decides (the older JSON held after its source check) can
# end with the older, whole result; real Cloud Storage refuses that write with 412 as S3 and moto do.
@pytest.mark.parametrize("kind, hold_before", [("s3", ".jpg"), ("s3", ".json"), ("gcs", ".jpg"), ("gcs", ".json")])
def test_overwritten_object_never_pairs_a_json_with_another_versions_image(s3, gcs_bucket, kind, hold_before) -> None:
    where = Bucket(kind, s3, gcs_bucket)
    key, json_key = f"uploads/overwritten-{hold_before[1:]}.png", f"results/overwritten-{hold_before[1:]}.png.json"
    where.upload(key, fixture_bytes("camera.png"))  # version 1: a man
    older, newer = where.store(hold_before=hold_before), where.store()
    first = threading.Thread(target=aws.run_one, args=(older, BUCKET, key))
    first.start()
    assert older.reached.wait(60)  # version 1 analysed, held before its image or its JSON commit
    where.upload(key, fixture_bytes("astronaut.png"))  # version 2: a woman
    assert aws.run_one(newer, BUCKET, key)[0]["status"] == "analyzed"  # version 2's event: image, then JSON
    older.go.set()
    first.join(60)
    final_json = where.read(json_key)
    result = json.loads(final_json)
    [writer] = [w for w in (older, newer) if w.wrote.get(json_key) == final_json]
    image_key = result["annotated_image"]["key"]
    # Compared by digest: pytest's diff of two differing JPEGs' bytes runs for minutes.
    same = hashlib.sha256(where.read(image_key)).digest() == hashlib.sha256(writer.wrote[image_key]).digest()
    assert same, "the image beside the JSON came from another analysis"
    if (kind, hold_before) == ("gcs", ".json"):
        return  # the emulator let the older JSON replace the newer one: whole, but the newer image is orphaned
    assert writer is newer and result["faces"][0]["gender"]["value"] == "female"  # nothing lost
    assert where.keys(json_key.removesuffix(".json")) == {json_key, image_key}  # no orphaned image
