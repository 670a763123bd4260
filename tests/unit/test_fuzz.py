"""Property tests (hypothesis): bad bytes and malformed events give typed client errors, never crashes;
S3 key handling round-trips and can never loop.

Bounded: 200 examples per property, no deadline; the whole file runs in a few seconds.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import os
from functools import cache
from urllib.parse import quote_plus, unquote_plus

import cv2
import numpy as np
from helpers import fixture_image, load_event
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from handler import aws, aws_events
from handler.config import SETTINGS, load_settings
from handler.errors import RequestError
from handler.imaging import decode
from handler.storage import MAX_KEY_BYTES, ObjectInfo, ObjectMissing
from handler.storage_trigger import TOKEN_CHARS, output_keys, redacted_key, skip_reason

# FUZZ_EXAMPLES=5000 for a deeper run by hand.
FUZZ = settings(max_examples=int(os.environ.get("FUZZ_EXAMPLES", 200)), deadline=None,
                suppress_health_check=[HealthCheck.too_slow])
# Small limits keep a mutated header that declares a big image cheap to reject or decode.
LIMITS = {"max_bytes": 2_000_000, "max_pixels": 1_000_000}


@cache
def seed_images() -> dict[str, bytes]:
    """Small real images in every supported format (and a CMYK and an EXIF JPEG) to mutate."""
    from crafted import cmyk_jpeg, with_exif_orientation

    image = cv2.resize(fixture_image("astronaut.png"), (48, 40))
    seeds = {fmt: cv2.imencode(f".{fmt}", image)[1].tobytes() for fmt in ("jpg", "png", "webp", "bmp")}
    seeds["png16"] = cv2.imencode(".png", image.astype(np.uint16) * 257)[1].tobytes()
    seeds["cmyk"] = cmyk_jpeg(image)
    seeds["exif"] = with_exif_orientation(seeds["jpg"], 6)
    return seeds


def check_decode(data: bytes) -> None:
    try:
        image = decode(data, **LIMITS)
    except RequestError as error:
        assert 400 <= error.status < 500 and error.code and error.message
        return
    assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3
    assert image.shape[0] * image.shape[1] <= LIMITS["max_pixels"]


@st.composite
def mutated(draw) -> bytes:
    """A seed image with a few byte flips, insertions, deletions or a truncation (often in the header)."""
    data = bytearray(seed_images()[draw(st.sampled_from(sorted(seed_images())))])
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["flip", "set", "insert", "delete", "truncate"]))
        near_header = draw(st.booleans())
        pos = draw(st.integers(0, min(len(data) - 1, 64) if near_header else len(data) - 1))
        if op == "flip":
            data[pos] ^= 1 << draw(st.integers(0, 7))
        elif op == "set":
            data[pos] = draw(st.sampled_from([0x00, 0xFF, 0x7F, 0x80, 0xD9, 0xDA]))
        elif op == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=16))
        elif op == "delete":
            del data[pos:pos + draw(st.integers(1, 16))]
        else:
            del data[pos:]
        if not data:
            break
    return bytes(data)


MAGIC = st.sampled_from([b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"RIFF\x00\x00\x00\x00WEBPVP8 ", b"BM", b"GIF89a",
                         b"II*\x00", b"\x00\x00\x00\x18ftypheic", b""])


@FUZZ
@given(st.binary(max_size=512) | st.builds(bytes.__add__, MAGIC, st.binary(max_size=256)))
def test_decode_arbitrary_bytes(data: bytes) -> None:
    check_decode(data)


@FUZZ
@given(mutated())
def test_decode_mutated_images(data: bytes) -> None:
    check_decode(data)


# ----------------------------------------------------------------------------- events

JSON_SCALARS = (st.none() | st.booleans() | st.integers(-2**40, 2**40) | st.floats(allow_nan=False)
                | st.text(max_size=20))
JSON = st.recursive(JSON_SCALARS, lambda inner: st.lists(inner, max_size=4)
                    | st.dictionaries(st.text(max_size=10), inner, max_size=4), max_leaves=12)
HTTP_SAMPLES = ["apiGatewayProxyV2Event.json", "apiGatewayProxyEvent.json", "lambdaFunctionUrlEvent.json",
                "apiGatewayProxyV2GetRoot.json"]
SAMPLE_KEYS = sorted({"body", "isBase64Encoded", "headers", "httpMethod", "path", "rawPath", "rawQueryString",
                      "queryStringParameters", "requestContext", "version", "multiValueHeaders", "cookies"})
CONTEXT_KEYS = ["http", "stage", "domainName", "httpMethod"]
HTTP_KEYS = ["method", "path"]


@st.composite
def mutated_event(draw, samples: list[str]) -> dict:
    """A real event sample with some fields replaced by arbitrary JSON, deleted, or set to odd strings."""
    event = copy.deepcopy(load_event(draw(st.sampled_from(samples))))
    for _ in range(draw(st.integers(1, 4))):
        where = draw(st.sampled_from(["top", "context", "http", "headers"]))
        target, keys = event, SAMPLE_KEYS
        if where == "context" and isinstance(event.get("requestContext"), dict):
            target, keys = event["requestContext"], CONTEXT_KEYS
        elif where == "http" and isinstance(event.get("requestContext"), dict) \
                and isinstance(event["requestContext"].get("http"), dict):
            target, keys = event["requestContext"]["http"], HTTP_KEYS
        elif where == "headers" and isinstance(event.get("headers"), dict):
            target, keys = event["headers"], ["content-type", "Content-Type", "accept", "x-odd"]
        key = draw(st.sampled_from(keys))
        action = draw(st.sampled_from(["json", "delete", "text"]))
        if action == "delete":
            target.pop(key, None)
        elif action == "text":
            target[key] = draw(st.text(max_size=40) | st.sampled_from(
                ["", "/", "//analyze", "/prod/analyze", "POST", "get", "application/json", "image/jpeg",
                 "{}", '{"image": 1}', "UExBQ0VIT0xERVI=", "$default", "2.0"]))
        else:
            target[key] = draw(JSON)
    return event


def check_http_response(response: object) -> None:
    assert isinstance(response, dict) and set(response) == {"statusCode", "headers", "body", "isBase64Encoded"}
    assert response["statusCode"] == 200 or 400 <= response["statusCode"] < 500 or response["statusCode"] == 503, \
        response
    assert isinstance(response["body"], str)


@FUZZ
@given(mutated_event(HTTP_SAMPLES))
def test_lambda_handler_never_raises_on_malformed_http_events(event: dict) -> None:
    kind = aws_events.event_kind(event)
    response = aws.lambda_handler(event, None)
    if kind in (aws_events.HTTP_V1, aws_events.HTTP_V2, aws_events.FUNCTION_URL):
        check_http_response(response)
    else:
        assert isinstance(response, dict)  # warm-up summary or the unknown-event error, never an exception


@FUZZ
@given(JSON)
def test_event_functions_on_arbitrary_json(value: object) -> None:
    kind = aws_events.event_kind(value)
    assert kind in {aws_events.HTTP_V1, aws_events.HTTP_V2, aws_events.FUNCTION_URL, aws_events.S3,
                    aws_events.WARMUP, aws_events.UNKNOWN, aws_events.SQS, aws_events.BATCH_OPERATIONS,
                    aws_events.MAP_BATCH}
    if kind in (aws_events.SQS, aws_events.BATCH_OPERATIONS, aws_events.MAP_BATCH):
        return  # storage paths: see test_malformed_bulk_events_never_raise
    if kind == aws_events.S3:
        assert all(isinstance(x, str) for obj in aws_events.s3_objects(value) for x in obj)
        return  # S3 events touch storage: see test_malformed_s3_records_never_raise
    if kind in (aws_events.HTTP_V1, aws_events.HTTP_V2, aws_events.FUNCTION_URL):
        try:
            aws_events.http_request(value, kind)
        except RequestError:
            pass
        check_http_response(aws.lambda_handler(value, None))
    else:
        assert isinstance(aws.lambda_handler(value, None), dict)


class MemoryStore:
    """An in-memory ObjectStore holding nothing: every read is ObjectMissing, writes are recorded."""

    def __init__(self) -> None:
        self.puts: list[str] = []
        self.error_codes: list[str | None] = []  # the faceread-error metadata of each write (None: not an error)

    def head(self, bucket: str, key: str) -> ObjectInfo:
        raise ObjectMissing(key)

    def get(self, bucket: str, key: str, version: str | None = None) -> bytes:
        raise ObjectMissing(key)

    def put(self, bucket: str, key: str, body: bytes, content_type: str, metadata: dict | None = None,
            **condition) -> None:
        self.puts.append(key)
        self.error_codes.append((metadata or {}).get("faceread-error"))

    def delete(self, bucket: str, key: str) -> None:
        pass


@st.composite
def mutated_s3_event(draw) -> dict:
    event = copy.deepcopy(load_event(draw(st.sampled_from(["s3EventEncodedKey.json", "s3EventMultipleRecords.json"]))))
    for _ in range(draw(st.integers(1, 4))):
        record = draw(st.sampled_from(event["Records"]))
        path = draw(st.sampled_from([("eventName",), ("s3",), ("s3", "bucket"), ("s3", "object"),
                                     ("s3", "bucket", "name"), ("s3", "object", "key")]))
        target = record
        for part in path[:-1]:
            target = target.get(part) if isinstance(target, dict) else None
        if isinstance(target, dict):
            target[path[-1]] = draw(JSON | st.text(max_size=60))
    return event


@FUZZ
@given(mutated_s3_event())
def test_malformed_s3_records_never_raise(event: dict) -> None:
    assert aws_events.event_kind(event) == aws_events.S3
    objects = aws_events.s3_objects(event)
    assert len(objects) == len(event["Records"])
    summary = aws.handle_s3(event, store=MemoryStore())
    assert len(summary["records"]) == len(event["Records"])
    assert {r["status"] for r in summary["records"]} <= {"skipped"}


@st.composite
def mutated_bulk_event(draw) -> dict:
    """A Batch Operations, SQS or Distributed Map sample with parts replaced by arbitrary JSON."""
    name = draw(st.sampled_from(["s3BatchOperationEventSchemaV1.json", "s3BatchOperationEventSchemaV2.json",
                                 "sqsS3Event.json", "sqsS3TestEvent.json", "distributedMapBatch.json"]))
    event = copy.deepcopy(load_event(name))
    item = (event.get("tasks") or event.get("Records") or event.get("Items"))[0]
    parts = [event, item, event.get("job") or event.get("BatchInput") or event]  # fixed before any mutation
    for _ in range(draw(st.integers(1, 3))):
        target = draw(st.sampled_from(parts))
        key = draw(st.sampled_from([*sorted(target), "s3Key", "body", "Key", "userArguments"]))
        target[key] = draw(JSON | st.text(max_size=60))
    return event


@FUZZ
@given(mutated_bulk_event())
def test_malformed_bulk_events_never_raise(event: dict) -> None:
    kind = aws_events.event_kind(event)
    store = MemoryStore()
    if kind == aws_events.BATCH_OPERATIONS:
        answer = aws.handle_batch_operations(event, store=store)
        assert len(answer["results"]) == len(event["tasks"])
        assert {r["resultCode"] for r in answer["results"]} <= {"PermanentFailure", "Succeeded"}
    elif kind == aws_events.SQS:
        assert set(aws.handle_sqs(event, store=store)) == {"batchItemFailures"}
    elif kind == aws_events.MAP_BATCH:
        try:
            assert len(aws.handle_map_batch(event, store=store)["results"]) == len(event["Items"])
        except RequestError as error:  # bad BatchInput options: the batch fails with a typed error
            assert error.code == "invalid_options"
    # Nothing exists in the store, so nothing is written, except the error result of an object whose event or
    # listing claims more than MAX_IMAGE_BYTES: the flow trusts that size and refuses it before any GET
    # (hypothesis found a listing item with Size 20000001 and an ETag; the same on bc9f8b6).
    assert set(store.error_codes) <= {"payload_too_large"}


# ----------------------------------------------------------------------------- S3 keys

KEY_TEXT = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=300)  # valid UTF-8 only
SETTINGS_VARIANTS = [
    SETTINGS,
    load_settings({"INPUT_PREFIX": "", "OUTPUT_PREFIX": "results/"}),
    load_settings({"INPUT_PREFIX": "in/photos", "OUTPUT_PREFIX": "/out/"}),
    dataclasses.replace(SETTINGS, output_bucket="faceread-output"),
]


def s3_event_for(encoded_key: str) -> dict:
    event = copy.deepcopy(load_event("s3EventEncodedKey.json"))
    event["Records"][0]["s3"]["object"]["key"] = encoded_key
    return event


@FUZZ
@given(KEY_TEXT, st.sampled_from(["", "/"]))
def test_s3_key_round_trip(key: str, safe: str) -> None:
    [(_, _, decoded)] = aws_events.s3_objects(s3_event_for(quote_plus(key, safe=safe)))
    assert decoded == key == unquote_plus(quote_plus(key, safe=safe))


@FUZZ
@given(st.sampled_from(["", "uploads/", "results/", "in/photos/", "uploads/long-keys/", "uploads/x.annotated.y/"])
       | st.just("uploads/"),
       KEY_TEXT | st.text(st.characters(blacklist_categories=("Cs",)), min_size=900, max_size=1100),
       st.sampled_from(range(len(SETTINGS_VARIANTS))))
def test_output_keys_are_bounded_and_never_loop(prefix: str, name: str, variant: int) -> None:
    cfg = SETTINGS_VARIANTS[variant]
    key = prefix + name
    image_key, json_key = output_keys(key, cfg)
    assert (image_key, json_key) == output_keys(key, cfg)  # deterministic
    assert image_key != json_key
    for out in (image_key, json_key):
        assert len(out.encode()) <= MAX_KEY_BYTES
        assert out.startswith(cfg.output_prefix)
        assert not (cfg.input_prefix and out.startswith(cfg.input_prefix))
        assert skip_reason("faceread-input", out, cfg) is not None  # our output never re-triggers us
        assert skip_reason(cfg.output_bucket or "faceread-input", out, cfg) is not None
    relative = key[len(cfg.input_prefix):] if key.startswith(cfg.input_prefix) else key
    token = "0" * TOKEN_CHARS  # output_keys' default token: the longest key is the same length
    if len((cfg.output_prefix + relative + f".annotated.{token}.jpg").encode()) > MAX_KEY_BYTES:
        digest = image_key.removeprefix(cfg.output_prefix + "long-keys/").removesuffix(f".annotated.{token}.jpg")
        assert len(digest) == 64 and set(digest) <= set("0123456789abcdef")
    else:
        assert image_key == cfg.output_prefix + relative + f".annotated.{token}.jpg"
    # The redacted image sits beside the annotated one, whatever ".annotated." the folders' names hold.
    assert redacted_key(image_key) == image_key.removesuffix(f".annotated.{token}.jpg") + f".redacted.{token}.jpg"


# ----------------------------------------------------------------------------- regressions found by the above

def test_lone_surrogate_text_body_is_a_400() -> None:
    event = load_event("apiGatewayProxyV2Event.json")
    event.update(body=json.loads('"\\ud800"'), isBase64Encoded=False)
    response = aws.lambda_handler(event, None)
    assert response["statusCode"] == 400 and json.loads(response["body"])["error"]["code"] == "invalid_body"


def test_wrongly_typed_http_fields_are_a_400() -> None:
    for sample, field, value in [("apiGatewayProxyEvent.json", "headers", True),
                                 ("apiGatewayProxyEvent.json", "queryStringParameters", "a=b"),
                                 ("apiGatewayProxyV2Event.json", "rawQueryString", True),
                                 ("apiGatewayProxyV2Event.json", "headers", ["content-type"])]:
        event = {**load_event(sample), field: value}
        response = aws.lambda_handler(event, None)
        assert response["statusCode"] == 400, (sample, field)
        assert json.loads(response["body"])["error"]["code"] == "invalid_event"


def test_malformed_s3_record_is_skipped() -> None:
    event = load_event("s3EventMultipleRecords.json")
    event["Records"][0]["s3"] = "not an object"
    summary = aws.handle_s3(event, store=MemoryStore())
    assert summary["records"][0]["key"] == "" and summary["records"][0]["status"] == "skipped"


def test_png_chunk_declaring_4_gb_is_refused_before_decoding() -> None:
    """Found by tools/fuzz_atheris.py: OpenCV allocated the declared IDAT length (4 GB RSS, 6 s) for 755 bytes."""
    import struct
    import zlib

    from procfs import status_kb

    ihdr = b"IHDR" + struct.pack(">IIBBBBB", 40, 32, 8, 0, 0, 0, 0)
    data = (b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + ihdr + struct.pack(">I", zlib.crc32(ihdr))
            + struct.pack(">I", 0xFFFFFB46) + b"IDAT" + bytes(700))
    peak = status_kb("self", "VmHWM")
    try:
        decode(data, **LIMITS)
    except RequestError as error:
        assert error.code == "invalid_image"
    else:
        raise AssertionError("decoded a PNG whose IDAT runs past the end of the data")
    assert status_kb("self", "VmHWM") - peak < 50 * 1024
