"""Image bytes in and out: format sniffing, header-size limits, decode, encode.

The pixel size is read from the file header before anything is decoded, so a
decompression bomb (a tiny PNG declaring 40000x40000) is refused before its
pixels are allocated. Pillow would do the header parsing for us, but it adds
21 MB to the Lambda package and 15 ms to import (measured; see the README);
these four headers are a few lines each.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import cv2
import numpy as np

from handler.errors import InvalidImage, PayloadTooLarge, UnsupportedMediaType

SUPPORTED = ("jpeg", "png", "webp", "bmp")
# Recognised but refused: a clear 415 beats "not an image" for these.
_UNSUPPORTED_MAGIC = {
    b"GIF87a": "gif", b"GIF89a": "gif",
    b"II*\x00": "tiff", b"MM\x00*": "tiff",
}
# JPEG start-of-frame markers carry the size; C4, C8 and CC are not frames.
_JPEG_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


@dataclass(frozen=True)
class Header:
    """What the file header says, before decoding."""

    format: str
    width: int
    height: int


def sniff_format(data: bytes) -> str:
    """Name the image format from its magic bytes, or raise a typed error."""
    if data[:3] == b"\xff\xd8\xff":
        return "jpeg"
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "png"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    if data[:2] == b"BM":
        return "bmp"
    for magic, name in _UNSUPPORTED_MAGIC.items():
        if data.startswith(magic):
            raise UnsupportedMediaType(f"{name.upper()} images are not supported; send JPEG, PNG, WebP or BMP")
    if data[4:8] == b"ftyp":
        raise UnsupportedMediaType("HEIC/AVIF images are not supported; send JPEG, PNG, WebP or BMP")
    raise InvalidImage("the data is not an image (expected JPEG, PNG, WebP or BMP)")


def _jpeg_size(data: bytes) -> tuple[int, int]:
    pos = 2
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            raise InvalidImage("corrupt JPEG: bad marker")
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker in (0x01,) or 0xD0 <= marker <= 0xD7:  # standalone markers
            pos += 2
            continue
        (length,) = struct.unpack(">H", data[pos + 2:pos + 4])
        if length < 2:
            raise InvalidImage("corrupt JPEG: bad segment length")
        if marker in _JPEG_SOF:
            if pos + 9 > len(data):
                break
            height, width = struct.unpack(">HH", data[pos + 5:pos + 9])
            # A truncated upload decodes to grey with only a warning from libjpeg:
            # require the end-of-image marker after the frame header.
            if data.rfind(b"\xff\xd9") < pos:
                raise InvalidImage("truncated JPEG: the end of the image is missing")
            return width, height
        if marker == 0xDA:  # start of scan before any frame header
            break
        pos += 2 + length
    raise InvalidImage("corrupt JPEG: no frame header")


def _webp_size(data: bytes) -> tuple[int, int]:
    chunk = data[12:16]
    if chunk == b"VP8 " and len(data) >= 30:
        w, h = struct.unpack("<HH", data[26:30])
        return w & 0x3FFF, h & 0x3FFF
    if chunk == b"VP8L" and len(data) >= 25:
        (bits,) = struct.unpack("<I", data[21:25])
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8X" and len(data) >= 30:
        w = int.from_bytes(data[24:27], "little") + 1
        h = int.from_bytes(data[27:30], "little") + 1
        return w, h
    raise InvalidImage("corrupt WebP header")


def _check_png_chunks(data: bytes) -> None:
    """Every chunk must fit in the data. OpenCV's PNG reader (4.11+, APNG support) allocates a chunk's
    declared length before reading it: a 1 KB file declaring a 4 GB IDAT cost 4 GB of RSS and 6 s."""
    pos = 8
    while pos + 8 <= len(data):
        length, chunk_type = struct.unpack(">I4s", data[pos:pos + 8])
        if length > 0x7FFFFFFF or pos + 12 + length > len(data):
            raise InvalidImage("corrupt or truncated PNG: a chunk runs past the end of the data")
        if chunk_type == b"IEND":
            return
        pos += 12 + length


def read_header(data: bytes) -> Header:
    """Format and pixel size from the header alone; raises InvalidImage if unreadable."""
    fmt = sniff_format(data)
    try:
        if fmt == "jpeg":
            width, height = _jpeg_size(data)
        elif fmt == "png":
            if data[12:16] != b"IHDR":
                raise InvalidImage("corrupt PNG header")
            width, height = struct.unpack(">II", data[16:24])
        elif fmt == "webp":
            width, height = _webp_size(data)
        else:
            width, height = struct.unpack("<ii", data[18:26])
            height = abs(height)  # negative height means a top-down bitmap
    except struct.error:
        raise InvalidImage(f"truncated {fmt.upper()} header") from None
    if width <= 0 or height <= 0:
        raise InvalidImage(f"{fmt.upper()} header declares an empty image")
    return Header(fmt, width, height)


def check_limits(data: bytes, *, max_bytes: int, max_pixels: int) -> Header:
    """Enforce the byte and pixel limits using only the header."""
    if not data:
        raise InvalidImage("the image is empty", code="empty_image")
    if len(data) > max_bytes:
        raise PayloadTooLarge(f"the image is {len(data):,} bytes; the limit is {max_bytes:,}")
    header = read_header(data)
    if header.width * header.height > max_pixels:
        raise PayloadTooLarge(
            f"the image is {header.width}x{header.height} pixels; the limit is {max_pixels:,} pixels",
            code="too_many_pixels",
        )
    return header


def decode(data: bytes, *, max_bytes: int, max_pixels: int) -> np.ndarray:
    """Decode to an upright 8-bit BGR array (EXIF orientation applied).

    16-bit, grayscale and alpha images are converted to 8-bit BGR; alpha is dropped.
    """
    header = check_limits(data, max_bytes=max_bytes, max_pixels=max_pixels)
    if header.format == "png":
        _check_png_chunks(data)
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if image is None or image.size == 0:
        raise InvalidImage("the image could not be decoded (corrupt or truncated file)")
    return image


def encode_jpeg(image: np.ndarray, quality: int) -> bytes:
    """Encode a BGR array as JPEG bytes."""
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    return buf.tobytes()
