"""Test helpers: fixture photos from scikit-image, tiled multi-face images, event samples, crafted files."""

from __future__ import annotations

import json
import re
import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest

TESTS = Path(__file__).resolve().parent
FIXTURES = TESTS / "fixtures"
EVENTS = TESTS / "events"
SHARED = TESTS.parent.parent / "shared"


def fixture_bytes(name: str) -> bytes:
    """Bytes of a fixture photo (fetched by `make fixtures`)."""
    path = FIXTURES / name
    if not path.is_file():
        pytest.fail(f"{path} is missing: run `make fixtures`")
    return path.read_bytes()


def fixture_image(name: str) -> np.ndarray:
    return cv2.imdecode(np.frombuffer(fixture_bytes(name), np.uint8), cv2.IMREAD_COLOR)


def jpeg(image: np.ndarray, quality: int = 90) -> bytes:
    return cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])[1].tobytes()


def png(image: np.ndarray) -> bytes:
    return cv2.imencode(".png", image)[1].tobytes()


def tiled(names: list[str], cols: int = 2, size: int = 320) -> np.ndarray:
    """A grid of photos, each resized to size x size: a multi-face image from single-face ones."""
    tiles = [cv2.resize(fixture_image(n), (size, size), interpolation=cv2.INTER_AREA) for n in names]
    while len(tiles) % cols:
        tiles.append(np.zeros_like(tiles[0]))
    rows = [np.hstack(tiles[i:i + cols]) for i in range(0, len(tiles), cols)]
    return np.vstack(rows)


def load_event(name: str) -> dict:
    """A real event sample from tests/events/."""
    return json.loads((EVENTS / name).read_text())


def shared_or_skip(*parts: str) -> Path:
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} not found: the shared data set (../shared) is only on CI and dev machines")
    return path


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose IHDR declares width x height with almost no data: a decompression bomb."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    body = struct.pack(">I", len(ihdr)) + chunk + struct.pack(">I", zlib.crc32(chunk))
    idat = zlib.compress(b"\x00" * 1024)
    body += struct.pack(">I", len(idat)) + b"IDAT" + idat + struct.pack(">I", zlib.crc32(b"IDAT" + idat))
    return b"\x89PNG\r\n\x1a\n" + body


def image_key(json_key: str, stored) -> str:
    """The annotated image's key a stored result names (the key carries a version token: storage_trigger)."""
    return json.loads(stored[json_key] if isinstance(stored, dict) else stored)["annotated_image"]["key"]


def without_tokens(keys) -> set[str]:
    """Output keys with the images' version token dropped (`x.annotated.<token>.jpg` -> `x.annotated.jpg`)."""
    return {re.sub(r"\.(annotated|redacted)\.[0-9a-f]{8}\.jpg$", r".\1.jpg", k) for k in keys}


def big_photo() -> bytes:
    """A 9 MP JPEG of one face (4.87 MB), over the body limit (DIRECT_IMAGE_LIMIT), as phone photos often are."""
    image = cv2.resize(fixture_image("astronaut.png"), (3000, 3000), interpolation=cv2.INTER_CUBIC)
    noise = np.random.default_rng(0).normal(0, 12, image.shape).astype(np.int16)
    return jpeg(np.clip(image.astype(np.int16) + noise, 0, 255).astype(np.uint8), quality=95)
