"""Bulk paths against moto in server mode: S3 Batch Operations (schemas 1.0 and 2.0), S3 -> SQS (with
a dead-letter queue) and Step Functions Distributed Map batches, plus the skip rule they share."""

from __future__ import annotations

import copy
import json
from urllib.parse import quote_plus

import boto3
import pytest
from botocore.config import Config
from helpers import fixture_bytes, load_event
from servers import free_port

from handler import aws

BUCKET = "faceread-bulk-input"
AWKWARD = ["with space.png", "a+b.png", "100% real.png", "фото ünï.png"]


@pytest.fixture(scope="module", autouse=True)
def bucket(s3) -> None:
    s3.create_bucket(Bucket=BUCKET)


class CountingStore(aws.S3Store):
    """The real S3 store, counting the calls the flow makes (the skip rule's cost)."""

    def __init__(self, client) -> None:
        super().__init__(client)
        self.calls: list[tuple[str, str]] = []

    def head(self, bucket, key):
        self.calls.append(("head", key))
        return super().head(bucket, key)

    def get(self, bucket, key, version=None):
        self.calls.append(("get", key))
        return super().get(bucket, key, version)

    def put(self, bucket, key, body, content_type, metadata=None, **condition):
        self.calls.append(("put", key))
        super().put(bucket, key, body, content_type, metadata, **condition)

    def delete(self, bucket, key):
        self.calls.append(("delete", key))
        super().delete(bucket, key)

    def count(self, verb: str) -> int:
        return sum(1 for v, _ in self.calls if v == verb)


def batch_event(schema: str, key: str, user_arguments: dict | None = None, version: str | None = None) -> dict:
    """The AWS docs sample for a schema, with our bucket and the key URL-encoded as Batch Operations sends it."""
    event = copy.deepcopy(load_event(f"s3BatchOperationEventSchemaV{schema[0]}.json"))
    task = event["tasks"][0]
    task["s3Key"], task["s3VersionId"] = quote_plus(key, safe="/"), version
    if schema == "1.0":
        task["s3BucketArn"] = f"arn:aws:s3:::{BUCKET}"
    else:
        task["s3Bucket"] = BUCKET
        event["job"]["userArguments"] = user_arguments or {}
    return event


@pytest.mark.parametrize("schema", ["1.0", "2.0"])
def test_batch_operations_awkward_keys_in_both_schemas(s3, schema: str) -> None:
    for name in AWKWARD:
        key = f"uploads/bo{schema}/{name}"
        s3.put_object(Bucket=BUCKET, Key=key, Body=fixture_bytes("camera.png"))
        event = batch_event(schema, key)
        answer = aws.lambda_handler(event, None)
        assert answer["invocationSchemaVersion"] == schema and answer["invocationId"] == event["invocationId"]
        assert answer["treatMissingKeysAs"] == "PermanentFailure"
        [result] = answer["results"]
        assert result["taskId"] == event["tasks"][0]["taskId"]
        assert result["resultCode"] == "Succeeded"
        # compact: the job facts (handler.facts: count, gender and age tallies), then the labels
        assert result["resultString"].startswith("1 face [male 1; (") and "]: Male, (" in result["resultString"]
        stored = json.loads(s3.get_object(Bucket=BUCKET, Key=f"results/bo{schema}/{name}.json")["Body"].read())
        assert stored["input"]["key"] == key and stored["faces_detected"] == 1


def test_batch_operations_result_codes(s3) -> None:
    s3.put_object(Bucket=BUCKET, Key="uploads/codes/notes.txt", Body=b"not a photo")
    codes = {}
    for key in ("uploads/codes/notes.txt", "uploads/codes/missing.png", "results/codes/x.json", "uploads/codes/"):
        [result] = aws.lambda_handler(batch_event("2.0", key), None)["results"]
        codes[key] = (result["resultCode"], result["resultString"])
    assert codes == {
        "uploads/codes/notes.txt": ("PermanentFailure", "invalid_image"),  # after writing its error JSON
        "uploads/codes/missing.png": ("PermanentFailure", "object_missing"),
        "results/codes/x.json": ("PermanentFailure", "skipped: output_prefix"),
        "uploads/codes/": ("Succeeded", "skipped: folder_placeholder"),
    }
    error = json.loads(s3.get_object(Bucket=BUCKET, Key="results/codes/notes.txt.json")["Body"].read())
    assert error["error"]["code"] == "invalid_image"


def test_unreachable_storage_is_a_temporary_failure() -> None:
    # A real connection refused (nothing listens on the port), one attempt: S3 will redrive the task.
    client = boto3.client("s3", endpoint_url=f"http://127.0.0.1:{free_port()}",
                          config=Config(retries={"max_attempts": 1}, connect_timeout=1))
    answer = aws.handle_batch_operations(batch_event("1.0", "uploads/any.png"), store=aws.S3Store(client))
    [result] = answer["results"]
    assert (result["resultCode"], result["resultString"]) == ("TemporaryFailure", "EndpointConnectionError")


def test_user_arguments_only_narrow_options(s3, four_faces_jpeg: bytes) -> None:
    key = "uploads/args/four.jpg"
    s3.put_object(Bucket=BUCKET, Key=key, Body=four_faces_jpeg)
    [result] = aws.lambda_handler(batch_event("2.0", key, {"max_faces": "1", "annotate": "false"}), None)["results"]
    assert result["resultCode"] == "Succeeded" and result["resultString"].startswith("4 faces [")
    stored = json.loads(s3.get_object(Bucket=BUCKET, Key="results/args/four.jpg.json")["Body"].read())
    assert stored["faces_detected"] == 4 and stored["faces_analyzed"] == 1 and "annotated_image" not in stored
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix="results/args/").get("Contents", [])] == [
        "results/args/four.jpg.json"]
    for arguments in ({"max_faces": "500"}, {"output_bucket": "elsewhere"}, {"max_image_bytes": "1"}):
        [result] = aws.lambda_handler(batch_event("2.0", key, arguments), None)["results"]
        assert result["resultCode"] == "PermanentFailure" and result["resultString"].startswith("invalid_options")


def test_skip_rule_one_head_no_inference_and_redo_on_change(s3) -> None:
    keys = [f"uploads/skip/{i}.png" for i in range(3)]
    for key in keys:
        s3.put_object(Bucket=BUCKET, Key=key, Body=fixture_bytes("camera.png"))
    items = [{"Etag": o["ETag"], "Key": o["Key"], "Size": o["Size"], "StorageClass": "STANDARD"}
             for o in s3.list_objects_v2(Bucket=BUCKET, Prefix="uploads/skip/")["Contents"]]
    batch = {"BatchInput": {"bucket": BUCKET}, "Items": items}  # what ItemReader + ItemBatcher hand over
    first = aws.handle_map_batch(batch)["results"]
    assert [r["status"] for r in first] == ["analyzed"] * 3
    modified = {k: s3.head_object(Bucket=BUCKET, Key=f"results/skip/{k[13:]}.json")["LastModified"] for k in keys}

    store = CountingStore(s3)
    again = aws.handle_map_batch(batch, store=store)["results"]
    assert [r["status"] for r in again] == ["unchanged"] * 3
    assert [r["faces"] for r in again] == [1, 1, 1] and again[0]["genders"] == first[0]["genders"]
    assert (store.count("head"), store.count("get"), store.count("put")) == (3, 0, 0)  # one HEAD each
    assert {k: s3.head_object(Bucket=BUCKET, Key=f"results/skip/{k[13:]}.json")["LastModified"]
            for k in keys} == modified

    # Batch Operations on an unversioned bucket: the task carries no ETag, so the source is HEADed too.
    store = CountingStore(s3)
    [result] = aws.handle_batch_operations(batch_event("1.0", keys[0]), store=store)["results"]
    assert result["resultString"].startswith("unchanged, 1 face")
    assert (store.count("head"), store.count("get"), store.count("put")) == (2, 0, 0)

    # A changed object is redone; the others still cost one HEAD.
    s3.put_object(Bucket=BUCKET, Key=keys[1], Body=fixture_bytes("astronaut.png"))
    items[1]["Etag"] = s3.head_object(Bucket=BUCKET, Key=keys[1])["ETag"]
    store = CountingStore(s3)
    again = aws.handle_map_batch(batch, store=store)["results"]
    assert [r["status"] for r in again] == ["unchanged", "analyzed", "unchanged"]
    assert again[1]["genders"] == ["female"] and store.count("get") == 1

    # Other options (as other models would) give another analysis fingerprint: redone.
    store = CountingStore(s3)
    narrowed = {**batch, "BatchInput": {"bucket": BUCKET, "options": {"max_faces": 1}}}
    assert [r["status"] for r in aws.handle_map_batch(narrowed, store=store)["results"]] == ["analyzed"] * 3


def test_map_batch_transient_failure_raises_for_the_state_machine_retry() -> None:
    client = boto3.client("s3", endpoint_url=f"http://127.0.0.1:{free_port()}",
                          config=Config(retries={"max_attempts": 1}, connect_timeout=1))
    batch = copy.deepcopy(load_event("distributedMapBatch.json"))
    with pytest.raises(aws.RetryableBatchError):
        aws.handle_map_batch(batch, store=aws.S3Store(client))


@pytest.fixture(scope="module")
def queues(s3):
    """moto SQS: an upload queue with a DLQ (maxReceiveCount 2), fed by the bucket's notifications."""
    sqs = boto3.client("sqs", endpoint_url=s3.meta.endpoint_url)
    dlq = sqs.create_queue(QueueName="faceread-uploads-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    queue = sqs.create_queue(QueueName="faceread-uploads", Attributes={
        "VisibilityTimeout": "0",  # the test redelivers at once; the template uses 6x the function timeout
        "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "2"})})["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    s3.create_bucket(Bucket="faceread-queued")
    s3.put_bucket_notification_configuration(Bucket="faceread-queued", NotificationConfiguration={
        "QueueConfigurations": [{"QueueArn": arn, "Events": ["s3:ObjectCreated:*"],
                                 "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": "uploads/"}]}}}]})
    return sqs, queue, dlq


def poll(sqs, queue: str) -> dict:
    """One receive, shaped into the event Lambda's SQS event source mapping delivers."""
    messages = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, AttributeNames=["All"]).get("Messages", [])
    sample = load_event("sqsS3Event.json")["Records"][0]
    records = [{**sample, "messageId": m["MessageId"], "receiptHandle": m["ReceiptHandle"], "body": m["Body"],
                "attributes": m["Attributes"], "md5OfBody": m["MD5OfBody"]} for m in messages]
    return {"Records": records}


class FlakyGet(aws.S3Store):
    def get(self, bucket, key, version=None):
        if "flaky" in key:
            raise ConnectionError("injected fault")
        return super().get(bucket, key, version)


def test_sqs_partial_batch_failures_end_in_the_dead_letter_queue(s3, queues) -> None:
    sqs, queue, dlq = queues
    s3.put_object(Bucket="faceread-queued", Key="uploads/ok é+1.png", Body=fixture_bytes("camera.png"))
    s3.put_object(Bucket="faceread-queued", Key="uploads/flaky.png", Body=fixture_bytes("camera.png"))
    store, answers = FlakyGet(s3), []
    for _ in range(4):  # what the event source mapping does: poll, invoke, delete what succeeded
        event = poll(sqs, queue)
        if not event["Records"]:
            break
        answer = aws.handle_sqs(event, store=store)
        answers.append(answer)
        failed = {f["itemIdentifier"] for f in answer["batchItemFailures"]}
        for record in event["Records"]:
            if record["messageId"] not in failed:
                sqs.delete_message(QueueUrl=queue, ReceiptHandle=record["receiptHandle"])
    bodies = [json.loads(r["body"]) for r in poll(sqs, queue)["Records"]]
    assert bodies == []  # nothing left in the queue: done, acknowledged, or dead-lettered
    # The first batch held the s3:TestEvent (acknowledged) and both uploads; only the flaky one failed.
    assert len(answers[0]["batchItemFailures"]) == 1
    dead = sqs.receive_message(QueueUrl=dlq, MaxNumberOfMessages=10).get("Messages", [])
    assert [aws.s3_records(json.loads(m["Body"]))[0].key for m in dead] == ["uploads/flaky.png"]
    assert "results/ok é+1.png.json" in {o["Key"] for o in s3.list_objects_v2(Bucket="faceread-queued")["Contents"]}


def test_sqs_samples_test_event_and_garbage() -> None:
    assert aws.lambda_handler(load_event("sqsS3TestEvent.json"), None) == {"batchItemFailures": []}
    garbage = copy.deepcopy(load_event("sqsS3Event.json"))
    garbage["Records"][0]["body"] = "not json"
    message_id = garbage["Records"][0]["messageId"]  # not an S3 event: to the DLQ, where a person sees it
    assert aws.lambda_handler(garbage, None) == {"batchItemFailures": [{"itemIdentifier": message_id}]}
