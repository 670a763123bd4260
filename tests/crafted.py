"""Hand-built image files OpenCV can't write: CMYK JPEG, EXIF-rotated JPEG, animated GIF (no Pillow needed)."""

from __future__ import annotations

import struct

import cv2
import numpy as np
from helpers import jpeg


def _segments(data: bytes) -> tuple[list[tuple[int, bytes]], bytes]:
    """A JPEG's marker segments up to and including SOS, and the entropy-coded data after it (without EOI)."""
    assert data[:2] == b"\xff\xd8"
    pos, segments = 2, []
    while True:
        marker = data[pos + 1]
        (length,) = struct.unpack(">H", data[pos + 2:pos + 4])
        segments.append((marker, data[pos + 4:pos + 2 + length]))
        pos += 2 + length
        if marker == 0xDA:
            end = data.rindex(b"\xff\xd9")
            return segments, data[pos:end]


def _segment(marker: int, payload: bytes) -> bytes:
    return bytes([0xFF, marker]) + struct.pack(">H", len(payload) + 2) + payload


def cmyk_jpeg(image: np.ndarray, quality: int = 90) -> bytes:
    """A 4-component (Adobe, inverted CMYK) baseline JPEG that decodes back to roughly `image` (BGR).

    Each component is a greyscale JPEG from OpenCV (same size, same standard quantisation and Huffman
    tables); their scans become four non-interleaved scans of one 4-component frame. The Adobe APP14
    segment with transform 0 tells libjpeg the components are CMYK (stored inverted, as Photoshop does),
    so with K' = 255 (no black) C' = R, M' = G, Y' = B.
    """
    b, g, r = cv2.split(image)
    planes = [r, g, b, np.full_like(r, 255)]
    parts = [_segments(jpeg(p, quality)) for p in planes]
    header, _ = parts[0]
    out = bytearray(b"\xff\xd8")
    out += _segment(0xEE, b"Adobe" + struct.pack(">HHHB", 100, 0, 0, 0))
    for marker, payload in header:
        if marker in (0xDB, 0xC4):  # quantisation and Huffman tables, shared by all planes
            out += _segment(marker, payload)
    height, width = image.shape[:2]
    out += _segment(0xC0, struct.pack(">BHHB", 8, height, width, 4)
                    + b"".join(struct.pack(">BBB", cid, 0x11, 0) for cid in (1, 2, 3, 4)))
    for cid, (_, scan) in enumerate(parts, start=1):
        out += _segment(0xDA, struct.pack(">BBB", 1, cid, 0x00) + b"\x00\x3f\x00") + scan
    out += b"\xff\xd9"
    return bytes(out)


def exif_orientation_segment(orientation: int) -> bytes:
    """An APP1 Exif segment holding only the Orientation tag (0x0112), big-endian TIFF."""
    tiff = b"MM\x00\x2a" + struct.pack(">I", 8)  # header, first IFD at offset 8
    tiff += struct.pack(">H", 1) + struct.pack(">HHIHH", 0x0112, 3, 1, orientation, 0) + struct.pack(">I", 0)
    return _segment(0xE1, b"Exif\x00\x00" + tiff)


def with_exif_orientation(data: bytes, orientation: int) -> bytes:
    """A JPEG with an Exif Orientation segment inserted right after SOI."""
    assert data[:2] == b"\xff\xd8"
    return data[:2] + exif_orientation_segment(orientation) + data[2:]


def with_jpeg_comment(data: bytes, text: bytes) -> bytes:
    """A JPEG with a COM segment after SOI (a place to hide a marker string)."""
    return data[:2] + _segment(0xFE, text) + data[2:]


def animated_gif(comment: bytes = b"") -> bytes:
    """A 2-frame, looping 1x1 GIF89a (NETSCAPE2.0 extension, graphic control per frame)."""
    out = bytearray(b"GIF89a" + struct.pack("<HHBBB", 1, 1, 0x80, 0, 0))  # global table of 2 colours
    out += b"\x00\x00\x00\xff\xff\xff"
    out += b"\x21\xff\x0bNETSCAPE2.0\x03\x01\x00\x00\x00"  # loop forever
    if comment:
        out += b"\x21\xfe" + bytes([len(comment[:255])]) + comment[:255] + b"\x00"
    for colour in (0, 1):
        out += b"\x21\xf9\x04\x00\x0a\x00\x00\x00"  # graphic control: 100 ms delay
        out += b"\x2c" + struct.pack("<HHHHB", 0, 0, 1, 1, 0)  # image descriptor
        out += b"\x02\x02" + (b"\x44\x01" if colour == 0 else b"\x4c\x01") + b"\x00"  # LZW data
    out += b"\x3b"
    return bytes(out)
