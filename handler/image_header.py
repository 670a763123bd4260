"""What an image's header says before anything is decoded: its format and pixel size.

The pixel size is read from the file header before anything is decoded, so a
decompression bomb (a tiny PNG declaring 40000x40000) is refused before its
pixels are allocated. Pillow would do the header parsing for us, but it adds 21 MB to the Lambda
package and 15 ms to import (measured; docs/decisions.md, "Hand-written instead of a library"); these
headers are a few lines each.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from handler.errors import InvalidImage, UnsupportedMediaType

SUPPORTED = ("jpeg", "png", "webp", "bmp", "avif", "tiff", "gif")
ACCEPTED = "JPEG, PNG, WebP, AVIF, TIFF, GIF or BMP"
HEIC_HINT = ("HEIC/HEIF photos are not supported; send JPEG (on an iPhone: Settings > Camera > Formats > "
             "Most Compatible, or share the photo, which converts it to JPEG; on a Mac: Preview > Export > JPEG)")
# ISO-BMFF brands (ftyp): AVIF is decoded by OpenCV's libavif; HEIC (HEVC) is not.
_AVIF_BRANDS = {b"avif", b"avis"}
_HEIF_BRANDS = {b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"hevm", b"hevs", b"mif1", b"msf1"}
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
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "gif"
    if data[:4] in (b"II*\x00", b"MM\x00*"):
        return "tiff"
    if data[4:8] == b"ftyp":
        size = int.from_bytes(data[:4], "big")
        brands = {data[i:i + 4] for i in range(8, min(max(size, 16), 256), 4)} - {data[12:16]}  # minus version
        if brands & _AVIF_BRANDS:
            return "avif"
        if brands & _HEIF_BRANDS:
            raise UnsupportedMediaType(HEIC_HINT)
        raise UnsupportedMediaType(f"this ISO media file is not an AVIF photo; send {ACCEPTED}")
    raise InvalidImage(f"the data is not an image (expected {ACCEPTED})")


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


def check_png_chunks(data: bytes) -> None:
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


def _tiff_size(data: bytes) -> tuple[int, int]:
    """ImageWidth and ImageLength from the first IFD (classic TIFF; BigTIFF has another magic)."""
    order = "<" if data[:2] == b"II" else ">"
    (ifd,) = struct.unpack(order + "I", data[4:8])
    (count,) = struct.unpack(order + "H", data[ifd:ifd + 2])
    size: dict[int, int] = {}
    for i in range(count):
        tag, kind, _, value = struct.unpack(order + "HHI4s", data[ifd + 2 + 12 * i:ifd + 14 + 12 * i])
        if tag in (256, 257):
            size[tag] = struct.unpack(order + ("H" if kind == 3 else "I"), value[:2 if kind == 3 else 4])[0]
    if len(size) != 2:
        raise InvalidImage("corrupt TIFF: no image size in its first directory")
    return size[256], size[257]


def _gif_size(data: bytes) -> tuple[int, int]:
    """The logical screen, grown to the first frame if that frame reaches beyond it."""
    width, height, flags = struct.unpack("<HHB", data[6:11])
    pos = 13 + (3 << ((flags & 7) + 1) if flags & 0x80 else 0)
    while pos < len(data):
        block = data[pos]
        if block == 0x21:  # extension: label, then sub-blocks up to a 0 length
            pos += 2
            while data[pos]:
                pos += data[pos] + 1
            pos += 1
        elif block == 0x2C:  # the first image descriptor
            left, top, w, h = struct.unpack("<HHHH", data[pos + 1:pos + 9])
            return max(width, left + w), max(height, top + h)
        else:
            break
    raise InvalidImage("corrupt GIF: no image in the file")


def _avif_size(data: bytes) -> tuple[int, int]:
    """The largest `ispe` (image spatial extents) property: the whole image of a tiled (grid) AVIF."""
    sizes = []
    pos = data.find(b"ispe")
    while pos != -1 and pos + 16 <= len(data):
        sizes.append(struct.unpack(">II", data[pos + 8:pos + 16]))
        pos = data.find(b"ispe", pos + 4)
    if not sizes:
        raise InvalidImage("corrupt AVIF: no image size (ispe) in the file")
    return max(sizes, key=lambda wh: wh[0] * wh[1])


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
        elif fmt == "tiff":
            width, height = _tiff_size(data)
        elif fmt == "gif":
            width, height = _gif_size(data)
        elif fmt == "avif":
            width, height = _avif_size(data)
        else:
            width, height = struct.unpack("<ii", data[18:26])
            height = abs(height)  # negative height means a top-down bitmap
    except (struct.error, IndexError):
        raise InvalidImage(f"truncated {fmt.upper()} header") from None
    if width <= 0 or height <= 0:
        raise InvalidImage(f"{fmt.upper()} header declares an empty image")
    return Header(fmt, width, height)
