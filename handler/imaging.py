"""Image bytes in and out: the size limits (from the header, handler/image_header.py), decode at the needed
scale, encode.

JPEGs are the one format that can be bigger than the pixel limit: libjpeg decodes them at 1/2, 1/4 or
1/8 scale straight from the DCT coefficients (`IMREAD_REDUCED_COLOR_*`), so a 48 or 108 MP phone photo
is decoded at the largest scale whose pixels fit the limit, never at full size.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from handler.errors import InvalidImage, PayloadTooLarge
from handler.image_header import Header, check_png_chunks, read_header

# JPEG decode scales libjpeg does from the DCT coefficients, and OpenCV's flag for each.
_REDUCED = {1: cv2.IMREAD_COLOR, 2: cv2.IMREAD_REDUCED_COLOR_2, 4: cv2.IMREAD_REDUCED_COLOR_4,
            8: cv2.IMREAD_REDUCED_COLOR_8}


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
        check_png_chunks(data)
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
