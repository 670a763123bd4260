"""S3 event edge cases against moto in server mode: awkward keys, long keys, many records, redelivery.

(test_s3_trigger.py covers the basic flow, loop guard, output bucket, faults and retries;
test_gcs_trigger.py covers Cloud Storage folders and empty objects.)
"""

from __future__ import annotations

import copy
import hashlib
import json
from urllib.parse import quote_plus

import pytest
from helpers import fixture_bytes, image_key, jpeg, load_event, tiled, without_tokens

from handler import aws
from handler.storage import MAX_KEY_BYTES

BUCKET = "faceread-edge-input"


@pytest.fixture(scope="module", autouse=True)
def buckets(s3) -> None:
    s3.create_bucket(Bucket=BUCKET)


def record(key: str, name: str = "ObjectCreated:Put") -> dict:
    """One record of the real S3 notification sample, key form-encoded as S3 sends it."""
    rec = copy.deepcopy(load_event("s3EventEncodedKey.json")["Records"][0])
    rec["eventName"] = name
    rec["s3"]["bucket"]["name"] = BUCKET
    rec["s3"]["object"]["key"] = quote_plus(key, safe="/")
    # The sample's eTag and size describe another object: without them the flow HEADs the real one.
    del rec["s3"]["object"]["eTag"], rec["s3"]["object"]["size"]
    return rec


def event(*keys: str) -> dict:
    return {"Records": [record(k) for k in keys]}


def objects(client, prefix: str = "") -> dict[str, bytes]:
    keys, token = [], None
    while True:
        page = client.list_objects_v2(Bucket=BUCKET, Prefix=prefix, **({"ContinuationToken": token} if token else {}))
        keys += [o["Key"] for o in page.get("Contents", [])]
        if not page.get("IsTruncated"):
            break
        token = page["NextContinuationToken"]
    return {k: client.get_object(Bucket=BUCKET, Key=k)["Body"].read() for k in keys}


AWKWARD = [
    "uploads/with space/my photo.png",
    "uploads/a+b=c&d.png",
    "uploads/100% real %2B%20.png",
    "uploads/фото/😀 ünïcödé.png",
    "uploads/tab\there?#[]@!$'()*,;.png",
]


@pytest.mark.parametrize("key", AWKWARD)
def test_awkward_keys_map_to_the_same_relative_output(s3, key: str) -> None:
    photo = fixture_bytes("camera.png")
    s3.put_object(Bucket=BUCKET, Key=key, Body=photo)
    summary = aws.lambda_handler(event(key), None)
    relative = key.removeprefix("uploads/")
    [rec] = summary["records"]
    assert (rec["key"], rec["status"], rec["faces"], rec["result"]) == (key, "analyzed", 1, f"results/{relative}.json")
    stored = objects(s3)
    assert stored[key] == photo  # input untouched
    result = json.loads(stored[f"results/{relative}.json"])
    etag = s3.head_object(Bucket=BUCKET, Key=key)["ETag"].strip('"')
    assert result["input"] == {"bucket": BUCKET, "key": key, "bytes": len(photo), "etag": etag}
    assert without_tokens([result["annotated_image"]["key"]]) == {f"results/{relative}.annotated.jpg"}
    assert stored[result["annotated_image"]["key"]][:3] == b"\xff\xd8\xff"


def _long_key(total_bytes: int, filler: str = "a") -> str:
    head, tail = "uploads/long/", ".png"
    room = total_bytes - len(head.encode()) - len(tail.encode())
    body = filler * (room // len(filler.encode()))
    body += "b" * (room - len(body.encode()))
    key = head + body + tail
    assert len(key.encode()) == total_bytes
    return key


def test_1000_byte_key_still_fits_under_results(s3) -> None:
    key = _long_key(1000)
    s3.put_object(Bucket=BUCKET, Key=key, Body=fixture_bytes("astronaut.png"))
    summary = aws.lambda_handler(event(key), None)
    relative = key.removeprefix("uploads/")
    assert summary["records"][0]["result"] == f"results/{relative}.json"
    assert len(image_key(f"results/{relative}.json", objects(s3)).encode()) <= MAX_KEY_BYTES
    assert json.loads(objects(s3)[f"results/{relative}.json"])["input"]["key"] == key


@pytest.mark.parametrize("filler", ["a", "é", "😀"])
def test_1024_byte_key_outputs_go_under_long_keys_sha256(s3, filler: str) -> None:
    key = _long_key(MAX_KEY_BYTES, filler)
    s3.put_object(Bucket=BUCKET, Key=key, Body=fixture_bytes("astronaut.png"))
    summary = aws.lambda_handler(event(key), None)
    base = "results/long-keys/" + hashlib.sha256(key.encode()).hexdigest()
    rec = summary["records"][0]
    assert (rec["key"], rec["status"], rec["faces"], rec["result"]) == (key, "analyzed", 1, base + ".json")
    stored = objects(s3, "results/long-keys/")
    result = json.loads(stored[base + ".json"])
    assert result["input"]["key"] == key  # the full key is recorded in the result
    assert without_tokens([result["annotated_image"]["key"]]) == {base + ".annotated.jpg"}
    assert result["annotated_image"]["key"] in stored


def test_five_records_one_not_an_image(s3, four_faces_jpeg: bytes) -> None:
    bodies = {
        "uploads/batch/1.png": fixture_bytes("camera.png"),
        "uploads/batch/2.png": fixture_bytes("astronaut.png"),
        "uploads/batch/3.txt": b"these are notes, not a photo",
        "uploads/batch/4.jpg": four_faces_jpeg,
        "uploads/batch/5.png": fixture_bytes("coffee.png"),
    }
    for key, body in bodies.items():
        s3.put_object(Bucket=BUCKET, Key=key, Body=body)
    summary = aws.lambda_handler(event(*bodies), None)  # returns normally: a bad image is not retried
    by_key = {r["key"]: r for r in summary["records"]}
    assert [r["key"] for r in summary["records"]] == list(bodies)  # one summary per record, in order
    assert {k: r["status"] for k, r in by_key.items()} == {
        "uploads/batch/1.png": "analyzed", "uploads/batch/2.png": "analyzed", "uploads/batch/3.txt": "error",
        "uploads/batch/4.jpg": "analyzed", "uploads/batch/5.png": "analyzed"}
    assert [by_key[k].get("faces") for k in bodies] == [1, 1, None, 4, 0]
    stored = objects(s3, "results/batch/")
    error = json.loads(stored["results/batch/3.txt.json"])
    assert error["error"]["code"] == "invalid_image" and error["input"]["key"] == "uploads/batch/3.txt"
    assert [k for k in stored if k.startswith("results/batch/3.txt")] == ["results/batch/3.txt.json"]
    for key in ("1.png", "2.png", "4.jpg", "5.png"):
        result = json.loads(stored[f"results/batch/{key}.json"])
        assert stored[result["annotated_image"]["key"]][:3] == b"\xff\xd8\xff"


def test_duplicate_delivery_of_a_multi_record_event_is_idempotent(s3) -> None:
    keys = ["uploads/dup/a b.png", "uploads/dup/ü+.png", "uploads/dup/bad.bin", "uploads/dup/four.jpg"]
    bodies = [fixture_bytes("camera.png"), fixture_bytes("astronaut.png"), b"\x89PNG\r\n\x1a\nnot really",
              jpeg(tiled(["astronaut.png", "camera.png", "chelsea.png", "camera.png"], size=400))]
    for key, body in zip(keys, bodies):
        s3.put_object(Bucket=BUCKET, Key=key, Body=body)
    ev = event(*keys)
    first = aws.lambda_handler(copy.deepcopy(ev), None)
    after_first = objects(s3)
    assert len([k for k in after_first if k.startswith("results/dup/")]) == 3 * 2 + 1  # 3 pairs + 1 error JSON
    second = aws.lambda_handler(copy.deepcopy(ev), None)
    # The skip rule: each result already records this source and analysis, so nothing is redone.
    assert [r["status"] for r in second["records"]] == ["unchanged"] * 4
    assert [r.get("faces") for r in second["records"]] == [r.get("faces") for r in first["records"]]
    assert objects(s3) == after_first  # nothing rewritten or added, inputs untouched
