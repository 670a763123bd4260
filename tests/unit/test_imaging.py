"""Decoding with limits: formats, header sizes, bombs, truncation, odd pixel formats."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from helpers import fixture_bytes, fixture_image, jpeg, png, png_header_only

from handler.errors import InvalidImage, PayloadTooLarge, UnsupportedMediaType
from handler.image_header import read_header
from handler.imaging import decode

LIMITS = {"max_bytes": 20_000_000, "max_pixels": 40_000_000}


@pytest.mark.parametrize("fmt", [".jpg", ".png", ".webp", ".bmp", ".avif", ".tiff", ".gif"])
def test_supported_formats_report_header_size(fmt: str) -> None:
    image = fixture_image("camera.png")[:200, :300]
    data = cv2.imencode(fmt, image)[1].tobytes()
    header = read_header(data)
    assert (header.width, header.height) == (300, 200)
    assert decode(data, **LIMITS).shape == (200, 300, 3)


def test_decompression_bomb_refused_before_decoding() -> None:
    with pytest.raises(PayloadTooLarge) as err:
        decode(png_header_only(40000, 40000), **LIMITS)
    assert err.value.code == "too_many_pixels" and err.value.status == 413


def test_byte_limit() -> None:
    with pytest.raises(PayloadTooLarge):
        decode(fixture_bytes("astronaut.png"), max_bytes=1000, max_pixels=10**8)


@pytest.mark.parametrize("data, error", [
    (b"", InvalidImage),
    (b"   \n", InvalidImage),
    (b"hello, world", InvalidImage),
    (b"GIF89a\x01\x00\x01\x00", InvalidImage),
    (b"II*\x00" + b"\x00" * 20, InvalidImage),
    (b"\x00\x00\x00\x18ftypheic" + b"\x00" * 20, UnsupportedMediaType),
    (b"\x00\x00\x00\x18ftypavif" + b"\x00" * 20, InvalidImage),
    (b"\x00\x00\x00\x18ftypisom" + b"\x00" * 20, UnsupportedMediaType),
    (b"\xff\xd8\xff", InvalidImage),
    (b"\x89PNG\r\n\x1a\n", InvalidImage),
    (b"RIFF\x00\x00\x00\x00WEBPVP8 ", InvalidImage),
    (b"BM\x00", InvalidImage),
])
def test_not_an_image(data: bytes, error: type) -> None:
    with pytest.raises(error):
        decode(data, **LIMITS)


def test_truncated_jpeg_is_refused() -> None:
    data = jpeg(fixture_image("astronaut.png"))
    with pytest.raises(InvalidImage, match="truncated"):
        decode(data[: len(data) // 2], **LIMITS)


def test_truncated_png_is_refused() -> None:
    data = fixture_bytes("astronaut.png")
    with pytest.raises(InvalidImage):
        decode(data[: len(data) // 2], **LIMITS)


def test_grey_16bit_and_alpha_become_8bit_bgr() -> None:
    grey = fixture_image("camera.png")[:, :, 0]
    rgba = cv2.cvtColor(fixture_image("astronaut.png"), cv2.COLOR_BGR2BGRA)
    deep = (fixture_image("astronaut.png").astype(np.uint16) * 257)
    for image in (grey, rgba, deep):
        out = decode(png(image), **LIMITS)
        assert out.dtype == np.uint8 and out.ndim == 3 and out.shape[2] == 3


def test_one_pixel_image_decodes() -> None:
    assert decode(png(np.zeros((1, 1, 3), np.uint8)), **LIMITS).shape == (1, 1, 3)
