"""Image bytes in and out: format sniffing, header-size limits, decode at the needed scale, encode.

The pixel size is read from the file header before anything is decoded, so a
decompression bomb (a tiny PNG declaring 40000x40000) is refused before its
pixels are allocated. JPEGs are the exception that can be bigger: libjpeg
decodes them at 1/2, 1/4 or 1/8 scale straight from the DCT coefficients
(`IMREAD_REDUCED_COLOR_*`), so a 48 or 108 MP phone photo is decoded at the
largest scale whose pixels fit the limit, never at full size. Pillow would do
the header parsing for us, but it adds 21 MB to the Lambda package and 15 ms to
import (measured; docs/decisions.md, "Hand-written instead of a library"); these headers are a few lines each.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass

import cv2
import numpy as np

from handler.errors import InvalidImage, PayloadTooLarge, UnsupportedMediaType

SUPPORTED = ("jpeg", "png", "webp", "bmp", "avif", "tiff", "gif")
ACCEPTED = "JPEG, PNG, WebP, AVIF, TIFF, GIF or BMP"
HEIC_HINT = ("HEIC/HEIF photos are not supported; send JPEG (on an iPhone: Settings > Camera > Formats > "
             "Most Compatible, or share the photo, which converts it to JPEG; on a Mac: Preview > Export > JPEG)")
# ISO-BMFF brands (ftyp): AVIF is decoded by OpenCV's libavif; HEIC (HEVC) is not.
_AVIF_BRANDS = {b"avif", b"avis"}
_HEIF_BRANDS = {b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"hevm", b"hevs", b"mif1", b"msf1"}
# JPEG decode scales libjpeg does from the DCT coefficients, and OpenCV's flag for each.
_REDUCED = {1: cv2.IMREAD_COLOR, 2: cv2.IMREAD_REDUCED_COLOR_2, 4: cv2.IMREAD_REDUCED_COLOR_4,
            8: cv2.IMREAD_REDUCED_COLOR_8}
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


def reduction(header: Header, max_pixels: int, target_pixels: int | None = None) -> int:
    """The JPEG decode scale divisor (1, 2, 4 or 8): the smallest whose pixels fit `max_pixels` (and
    `target_pixels`, when the caller needs less); 1 for other formats; 0 if even 1/8 is too big."""
    if header.format != "jpeg":
        return 1 if header.width * header.height <= max_pixels else 0
    budget = min(max_pixels, target_pixels or max_pixels)
    for factor in _REDUCED:
        if math.ceil(header.width / factor) * math.ceil(header.height / factor) <= budget:
            return factor
    # A caller's smaller target can settle for 1/8; the pixel limit can't.
    return 8 if math.ceil(header.width / 8) * math.ceil(header.height / 8) <= max_pixels else 0


def check_limits(data: bytes, *, max_bytes: int, max_pixels: int) -> Header:
    """Enforce the byte and pixel limits using only the header (a JPEG's pixels after reduced decoding)."""
    if not data:
        raise InvalidImage("the image is empty", code="empty_image")
    if len(data) > max_bytes:
        raise PayloadTooLarge(f"the image is {len(data):,} bytes; the limit is {max_bytes:,}")
    header = read_header(data)
    if not reduction(header, max_pixels):
        raise PayloadTooLarge(
            f"the image is {header.width}x{header.height} pixels; the limit is {max_pixels:,} pixels"
            + (" (JPEGs: after decoding at 1/8 scale)" if header.format == "jpeg" else ""),
            code="too_many_pixels",
        )
    return header


@dataclass(frozen=True)
class Decoded:
    """The upright working image and how it maps to the upright original (EXIF orientation applied)."""

    image: np.ndarray
    width: int  # the original's upright size
    height: int
    format: str

    @property
    def scale(self) -> float:
        """Working pixels per original pixel (1.0 unless a JPEG was decoded reduced)."""
        return self.image.shape[1] / self.width


def load(data: bytes, *, max_bytes: int, max_pixels: int, target_pixels: int | None = None) -> Decoded:
    """Decode to an upright 8-bit BGR working image, a big JPEG at a reduced scale (see `reduction`).

    16-bit, grayscale and alpha images are converted to 8-bit BGR; alpha is dropped;
    a GIF or a multi-page TIFF gives its first frame.
    """
    header = check_limits(data, max_bytes=max_bytes, max_pixels=max_pixels)
    if header.format == "png":
        _check_png_chunks(data)
    factor = reduction(header, max_pixels, target_pixels)
    image = cv2.imdecode(np.frombuffer(data, np.uint8), _REDUCED[factor])
    if image is None or image.size == 0:
        raise InvalidImage("the image could not be decoded (corrupt or truncated file)")
    height, width = image.shape[:2]
    if factor == 1:
        return Decoded(image, width, height, header.format)
    # EXIF orientation may have turned it: the original's upright size follows the decoded one.
    expected = (math.ceil(header.width / factor), math.ceil(header.height / factor))
    turned = (width, height) != expected and (height, width) == expected
    upright = (header.height, header.width) if turned else (header.width, header.height)
    return Decoded(image, upright[0], upright[1], header.format)


def decode(data: bytes, *, max_bytes: int, max_pixels: int) -> np.ndarray:
    """The upright 8-bit BGR working image (see `load`)."""
    return load(data, max_bytes=max_bytes, max_pixels=max_pixels).image


def fit_long_side(image: np.ndarray, max_side: int) -> np.ndarray:
    """`image` shrunk (INTER_AREA) so its long side is at most `max_side`; itself if it already is."""
    height, width = image.shape[:2]
    if max(width, height) <= max_side:
        return image
    scale = max_side / max(width, height)
    return cv2.resize(image, (max(1, round(width * scale)), max(1, round(height * scale))),
                      interpolation=cv2.INTER_AREA)


def encode_jpeg(image: np.ndarray, quality: int) -> bytes:
    """Encode a BGR array as JPEG bytes."""
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    return buf.tobytes()


def encode_jpeg_within(image: np.ndarray, quality: int, budget: int) -> tuple[bytes, float]:
    """JPEG bytes of `image`, shrunk (0.7x per step) until they fit `budget` bytes; (jpeg, scale applied)."""
    jpeg, scale = encode_jpeg(image, quality), 1.0
    while len(jpeg) > budget and scale > 0.05:
        scale *= 0.7
        small = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        jpeg = encode_jpeg(small, quality)
    return jpeg, scale
