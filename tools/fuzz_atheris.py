#!/usr/bin/env python3
"""Coverage-guided fuzzing (atheris / libFuzzer) of image decoding and the Lambda HTTP path.

Usage (project venv, from the repo root; atheris is a dev-only tool, installed on demand):

    .venv/bin/pip install atheris==3.0.0
    .venv/bin/python tools/fuzz_atheris.py --seconds 60 [--target decode|lambda|both] [libFuzzer flags...]

Each input drives one of two targets (chosen by its first byte with --target both):

- decode: `handler.imaging.decode(data)` must return an 8-bit BGR array or raise a
  `RequestError` (a typed 4xx); any other exception is a finding.
- lambda: the bytes become an API Gateway v2 / v1 / Function URL event built from the real
  samples in tests/events (method, path, query, content type, body, base64 flag, sometimes a
  field of the wrong JSON type), sent to `handler.aws.lambda_handler`. It must return the
  proxy response dict with status 200 or 4xx: an exception or a 500 is a finding.

libFuzzer runs under -rss_limit_mb=2048 (the Lambda default memory), so a decode that would
blow the function's memory is a finding too. The corpus (seeded with small real images on the
first run) lives in build/fuzz-corpus/, findings in build/fuzz-artifacts/. Replay one with
`.venv/bin/python tools/fuzz_atheris.py build/fuzz-artifacts/crash-<sha>`.

Without atheris (no wheel for the platform) the same targets run under hypothesis'
`fuzz_one_input` with random buffers for --seconds: not coverage-guided, but the same checks.
"""

from __future__ import annotations

import argparse
import base64
import copy
import json
import os
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]
os.environ.setdefault("LOG_LEVEL", "ERROR")  # one JSON line per request would drown the fuzzer's output
os.environ.setdefault("OPENCV_LOG_LEVEL", "ERROR")

try:
    import atheris
except ImportError:  # pragma: no cover - depends on the platform
    atheris = None

if atheris is not None:
    with atheris.instrument_imports(include=["handler"]):
        from handler import aws
        from handler.errors import RequestError
        from handler.imaging import decode
else:
    from handler import aws
    from handler.errors import RequestError
    from handler.imaging import decode

import cv2  # noqa: E402
import numpy as np  # noqa: E402

EVENTS = ROOT / "tests" / "events"
SAMPLES = [json.loads((EVENTS / n).read_text()) for n in
           ("apiGatewayProxyV2Event.json", "apiGatewayProxyEvent.json", "lambdaFunctionUrlEvent.json")]
LIMITS = {"max_bytes": 20_000_000, "max_pixels": 40_000_000}  # the defaults
METHODS = ["POST", "GET", "HEAD", "OPTIONS", "PUT", "DELETE", "post", ""]
PATHS = ["/analyze", "/", "/health", "/analyze/", "/prod/analyze", "//analyze", "/nope", ""]
TYPES = ["image/jpeg", "image/png", "application/json", "application/octet-stream", "text/plain", "",
         "application/json; charset=utf-8", "image/*"]
QUERIES = ["", "annotate=false", "max_faces=1", "max_faces=1000", "min_confidence=x", "annotate=maybe"]
ODD_VALUES = [None, True, 0, [], {}, "", "x"]
ODD_FIELDS = ["headers", "body", "isBase64Encoded", "rawPath", "rawQueryString", "path", "httpMethod",
              "queryStringParameters"]


class Finding(AssertionError):
    """A target broke its contract."""


def check_decode(data: bytes) -> None:
    try:
        image = decode(data, **LIMITS)
    except RequestError as error:
        if not (400 <= error.status < 500 and error.code):
            raise Finding(f"RequestError with status {error.status} code {error.code!r}") from error
        return
    if not (image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3):
        raise Finding(f"decode returned {image.dtype} {image.shape}")


class Reader:
    """Structured choices from the fuzzer's bytes (atheris' FuzzedDataProvider when available)."""

    def __init__(self, data: bytes) -> None:
        self.fdp = atheris.FuzzedDataProvider(data) if atheris is not None else None
        self.data, self.pos = data, 0

    def pick(self, options: list):
        if self.fdp is not None:
            return self.fdp.PickValueInList(options)
        value = self.data[self.pos] if self.pos < len(self.data) else 0
        self.pos += 1
        return options[value % len(options)]

    def rest(self) -> bytes:
        if self.fdp is not None:
            return self.fdp.ConsumeBytes(self.fdp.remaining_bytes())
        rest, self.pos = self.data[self.pos:], len(self.data)
        return rest


def lambda_event(reader: Reader) -> dict:
    event = copy.deepcopy(reader.pick(SAMPLES))
    method, path, content_type, query = (reader.pick(METHODS), reader.pick(PATHS), reader.pick(TYPES),
                                         reader.pick(QUERIES))
    encoding = reader.pick(["base64", "text", "json-image", "bad-base64"])
    odd = reader.pick([None] * 6 + ODD_FIELDS)
    odd_value = reader.pick(ODD_VALUES)
    body = reader.rest()
    headers = {k: v for k, v in event["headers"].items() if k.lower() != "content-type"}
    if content_type:
        headers["content-type"] = content_type
    event["headers"] = headers
    if encoding == "base64":
        event["body"], event["isBase64Encoded"] = base64.b64encode(body).decode(), True
    elif encoding == "json-image":
        payload = {"image": base64.b64encode(body).decode()}
        event["body"], event["isBase64Encoded"] = json.dumps(payload), False
    elif encoding == "bad-base64":
        event["body"], event["isBase64Encoded"] = body.decode("latin-1"), True
    else:
        event["body"], event["isBase64Encoded"] = body.decode("utf-8", "replace"), False
    if "httpMethod" in event:
        event["httpMethod"], event["path"] = method, path
        event["queryStringParameters"] = dict(p.partition("=")[::2] for p in query.split("&")) if query else None
    else:
        event["rawPath"], event["rawQueryString"] = path, query
        event["requestContext"]["http"].update(method=method, path=path)
    if odd:
        event[odd] = odd_value
    return event


def check_lambda(data: bytes) -> None:
    event = lambda_event(Reader(data))
    response = aws.lambda_handler(event, None)
    if not isinstance(response, dict) or "statusCode" not in response:
        return  # an odd field made it an unknown event: answered with the unknown-event error
    status = response["statusCode"]
    if not (status in (200, 204) or 400 <= status < 500):
        raise Finding(f"status {status}: {response['body'][:300]}")
    if status >= 400:
        error = json.loads(response["body"])["error"]
        if set(error) != {"code", "message"}:
            raise Finding(f"error body {error}")


TARGETS = {"decode": check_decode, "lambda": check_lambda}


def one_input(target: str):
    if target != "both":
        return TARGETS[target]

    def both(data: bytes) -> None:
        if data:
            (check_decode if data[0] & 1 else check_lambda)(data[1:])

    return both


def seed_corpus(corpus: Path, prefixed: bool) -> None:
    """Small real images (every format, 16-bit, grey, RGBA, CMYK, EXIF) so the fuzzer starts past the magic."""
    if corpus.is_dir() and any(corpus.iterdir()):
        return
    corpus.mkdir(parents=True, exist_ok=True)
    from crafted import animated_gif, cmyk_jpeg, with_exif_orientation

    fixture = ROOT / "tests" / "fixtures" / "astronaut.png"
    image = cv2.imread(str(fixture), cv2.IMREAD_COLOR) if fixture.is_file() else \
        np.random.default_rng(0).integers(0, 255, (64, 64, 3), np.uint8)
    image = cv2.resize(image, (40, 32))
    seeds = {f"s.{fmt}": cv2.imencode(f".{fmt}", image)[1].tobytes() for fmt in ("jpg", "png", "webp", "bmp")}
    seeds["s16.png"] = cv2.imencode(".png", image.astype(np.uint16) * 257)[1].tobytes()
    seeds["grey.png"] = cv2.imencode(".png", image[:, :, 0])[1].tobytes()
    seeds["cmyk.jpg"] = cmyk_jpeg(image)
    seeds["exif.jpg"] = with_exif_orientation(seeds["s.jpg"], 6)
    seeds["anim.gif"] = animated_gif()
    for name, data in seeds.items():
        for prefix in ((b"\x00", b"\x01") if prefixed else (b"",)):  # --target both: a seed for each target
            (corpus / f"{prefix.hex()}{name}").write_bytes(prefix + data)


def run_hypothesis(target, seconds: float, corpus_dir: Path) -> int:
    """Fallback: hypothesis' fuzz_one_input over random buffers."""
    from hypothesis import given, settings
    from hypothesis import strategies as st

    @settings(database=None)
    @given(st.binary(max_size=4096))
    def prop(data: bytes) -> None:
        target(data)

    rng, count, deadline = random.Random(0), 0, time.monotonic() + seconds
    corpus = [p.read_bytes() for p in corpus_dir.glob("*")]
    while time.monotonic() < deadline:
        if corpus and rng.random() < 0.5:  # mutate a seed: flip a few bytes
            data = bytearray(rng.choice(corpus))
            for _ in range(rng.randint(1, 8)):
                data[rng.randrange(len(data))] = rng.randrange(256)
            target(bytes(data))
        else:
            prop.hypothesis.fuzz_one_input(rng.randbytes(rng.randint(0, 8192)))
        count += 1
    print(f"hypothesis fallback: {count} inputs in {seconds:.0f} s, no findings")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60, help="total fuzzing time (default 60)")
    parser.add_argument("--target", choices=["decode", "lambda", "both"], default="both")
    args, libfuzzer_args = parser.parse_known_args()
    target = one_input(args.target)
    corpus, artifacts = ROOT / "build" / "fuzz-corpus" / args.target, ROOT / "build" / "fuzz-artifacts"
    seed_corpus(corpus, prefixed=args.target == "both")
    artifacts.mkdir(parents=True, exist_ok=True)
    if atheris is None:
        print("atheris is not installed: falling back to hypothesis' fuzz_one_input (not coverage-guided)")
        return run_hypothesis(target, args.seconds, corpus)
    replay = [a for a in libfuzzer_args if not a.startswith("-")]  # a crash file to replay, or corpus dirs
    flags = [f"-max_total_time={int(args.seconds)}", "-rss_limit_mb=2048", "-timeout=20",
             f"-artifact_prefix={artifacts}/", "-print_final_stats=1"]
    atheris.Setup([sys.argv[0], *flags, *libfuzzer_args, *([] if replay else [str(corpus)])], target)
    atheris.Fuzz()
    return 0


if __name__ == "__main__":
    sys.exit(main())
