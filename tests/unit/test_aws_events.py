"""Every real event sample is recognised and routed; S3 keys arrive decoded."""

from __future__ import annotations

import json

import pytest
from helpers import load_event

from handler import aws
from handler.aws_events import (
    batch_job,
    bucket_from_arn,
    event_kind,
    http_request,
    is_s3_test_event,
    map_items,
    s3_objects,
    sqs_bodies,
)


@pytest.mark.parametrize("name, kind", [
    ("apiGatewayProxyEvent.json", "apigw_rest_v1"),
    ("apiGatewayProxyV2Event.json", "apigw_http_v2"),
    ("apiGatewayProxyV2GetRoot.json", "apigw_http_v2"),
    ("lambdaFunctionUrlEvent.json", "function_url"),
    ("s3EventEncodedKey.json", "s3"),
    ("s3EventMultipleRecords.json", "s3"),
    ("scheduledEvent.json", "warmup"),
    ("warmupEvent.json", "warmup"),
    ("s3BatchOperationEventSchemaV1.json", "s3_batch_operations"),
    ("s3BatchOperationEventSchemaV2.json", "s3_batch_operations"),
    ("sqsS3Event.json", "sqs"),
    ("sqsS3TestEvent.json", "sqs"),
    ("distributedMapBatch.json", "distributed_map_batch"),
])
def test_event_kinds(name: str, kind: str) -> None:
    assert event_kind(load_event(name)) == kind


def test_s3_keys_are_url_decoded() -> None:
    assert s3_objects(load_event("s3EventEncodedKey.json"))[0][2] == "uploads/My Photoé.jpg"
    keys = [key for _, _, key in s3_objects(load_event("s3EventMultipleRecords.json"))]
    assert keys == ["uploads/first.jpg", "uploads/team/second photo.png"]


def test_batch_operations_samples_in_both_schemas() -> None:
    v1, v2 = batch_job(load_event("s3BatchOperationEventSchemaV1.json")), batch_job(
        load_event("s3BatchOperationEventSchemaV2.json"))
    assert (v1.schema, v1.tasks[0].bucket, v1.tasks[0].key, v1.tasks[0].source.version, v1.user_arguments) == (
        "1.0", "examplebucket", "customerImage1.jpg", "1", {})
    assert (v2.schema, v2.tasks[0].bucket, v2.tasks[0].source.version, v2.user_arguments) == (
        "2.0", "powertools-dataset", None, {"k1": "v1", "k2": "v2"})
    # The older docs sample's ARN form (region and account filled in) names the same bucket.
    assert bucket_from_arn("arn:aws:s3:us-east-1:0123456788:awsexamplebucket") == "awsexamplebucket"


def test_map_items_and_sqs_bodies() -> None:
    batch_input, items = map_items(load_event("distributedMapBatch.json"))
    assert batch_input == {"bucket": "faceread-input"}
    assert items[0].bucket == "faceread-input" and items[0].source.etag == "05704fbdccb224cb01c59005bebbad28"
    [(_, body)] = sqs_bodies(load_event("sqsS3Event.json"))
    assert s3_objects(body)[0][2] == "uploads/My Photoé.jpg"
    [(_, test)] = sqs_bodies(load_event("sqsS3TestEvent.json"))
    assert is_s3_test_event(test)


def test_named_stage_is_stripped_from_http_api_paths() -> None:
    event = load_event("apiGatewayProxyV2Event.json")
    event["rawPath"], event["requestContext"]["stage"] = "/prod/analyze", "prod"
    assert http_request(event, "apigw_http_v2").path == "/analyze"


@pytest.mark.parametrize("name", ["apiGatewayProxyEvent.json", "apiGatewayProxyV2GetRoot.json",
                                  "lambdaFunctionUrlEvent.json"])
def test_page_and_health_through_every_http_shape(name: str) -> None:
    event = load_event(name)
    for path, content_type in (("/", "text/html"), ("/health", "application/json")):
        if "httpMethod" in event:
            event.update(httpMethod="GET", path=path, body=None, isBase64Encoded=False)
        else:
            event.update(rawPath=path, body=None, isBase64Encoded=False)
            event["requestContext"]["http"].update(method="GET", path=path)
        response = aws.lambda_handler(event, None)
        assert response["statusCode"] == 200 and response["headers"]["Content-Type"].startswith(content_type)
        assert response["isBase64Encoded"] is False


def test_warm_ping_answers_without_inference() -> None:
    cold = aws.runtime.peek_cold_start()
    assert aws.lambda_handler(load_event("warmupEvent.json"), None) == {"warm": True, "cold_start": cold}
    assert aws.runtime.peek_cold_start() == cold  # no analysis ran


def test_unknown_event_is_a_clear_error_not_a_crash() -> None:
    for event in ({"hello": "world"}, [], "text", None):
        assert aws.lambda_handler(event, None)["error"]["code"] == "unknown_event"
    assert json.dumps(aws.lambda_handler({"Records": [{"eventSource": "aws:sqs"}]}, None))
