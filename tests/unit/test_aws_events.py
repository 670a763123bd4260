"""Every real event sample is recognised and routed; S3 keys arrive decoded."""

from __future__ import annotations

import pytest
from helpers import load_event

from handler import aws
from handler.aws_events import event_kind, http_request, s3_objects


@pytest.mark.parametrize("name, kind", [
    ("apiGatewayProxyEvent.json", "apigw_rest_v1"),
    ("apiGatewayProxyV2Event.json", "apigw_http_v2"),
    ("apiGatewayProxyV2GetRoot.json", "apigw_http_v2"),
    ("lambdaFunctionUrlEvent.json", "function_url"),
    ("s3EventEncodedKey.json", "s3"),
    ("s3EventMultipleRecords.json", "s3"),
    ("scheduledEvent.json", "warmup"),
    ("warmupEvent.json", "warmup"),
])
def test_event_kinds(name: str, kind: str) -> None:
    assert event_kind(load_event(name)) == kind


def test_s3_keys_are_url_decoded() -> None:
    assert s3_objects(load_event("s3EventEncodedKey.json"))[0][2] == "uploads/My Photoé.jpg"
    keys = [key for _, _, key in s3_objects(load_event("s3EventMultipleRecords.json"))]
    assert keys == ["uploads/first.jpg", "uploads/team/second photo.png"]


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


@pytest.mark.parametrize("event", [
    {"hello": "world"}, [], "text", None, {"Records": []},
    {"Records": [{"eventSource": "aws:dynamodb"}]},
    {"Records": [{"eventSource": "aws:s3", "s3": {}}, {"eventSource": "aws:kinesis"}]},  # S3 mixed with another
], ids=["dict", "list", "str", "none", "no records", "dynamodb", "s3 mixed"])
def test_unknown_event_is_a_clear_error_not_a_crash(event: object) -> None:
    cold = aws.runtime.peek_cold_start()
    assert event_kind(event) == "unknown"
    answer = aws.lambda_handler(event, None)
    assert set(answer) == {"error"} and answer["error"]["code"] == "unknown_event"
    assert "S3" in answer["error"]["message"]  # it names the shapes we do accept
    assert aws.runtime.peek_cold_start() == cold  # nothing was analysed
