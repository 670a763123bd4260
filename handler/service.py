"""The one entry every edge calls: image bytes + options -> result JSON (+ annotated JPEG)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from handler import runtime
from handler.annotate import annotate
from handler.config import SETTINGS
from handler.face import Face
from handler.imaging import decode, encode_jpeg, encode_jpeg_within, fit_long_side, load
from handler.logs import log
from handler.options import Options
from handler.pipeline import analyze, analyze_faces, attributes
from handler.readout import face_label
from handler.redact import pixelate, redaction_regions

DEFAULT_OPTIONS = Options(
    min_confidence=SETTINGS.min_confidence,
    max_faces=SETTINGS.max_faces,
    min_gender_confidence=SETTINGS.min_gender_confidence,
    min_face_px=SETTINGS.min_face_px,
    min_sharpness=SETTINGS.min_sharpness,
    detect_max_side=SETTINGS.detect_max_side,
)


# `detail: fast` analyses a JPEG decoded at the reduced scale whose pixels fit this (1/4 of 12 MP).
FAST_WORKING_PIXELS = 1_500_000


@dataclass(frozen=True)
class Outcome:
    """What an analysis produced: the JSON-ready result, the JPEGs the options asked for (else None)
    and their scales (image pixels per original pixel)."""

    result: dict
    annotated_jpeg: bytes | None
    annotated_scale: float | None = None
    redacted_jpeg: bytes | None = None
    redacted_scale: float | None = None


def parse_options(request_options: object) -> Options:
    """Defaults from the environment, narrowed by the request's `options` object."""
    return DEFAULT_OPTIONS.merged(request_options)


def _scaled_box(box: dict, sx: float, sy: float, size: tuple[int, int]) -> dict:
    """A box from working-image pixels to another scale, clipped to that image's `size`."""
    x1, y1 = min(round(box["x"] * sx), size[0] - 1), min(round(box["y"] * sy), size[1] - 1)
    x2 = min(round((box["x"] + box["width"]) * sx), size[0])
    y2 = min(round((box["y"] + box["height"]) * sy), size[1])
    return {"x": x1, "y": y1, "width": max(1, x2 - x1), "height": max(1, y2 - y1)}


def _encode(picture: np.ndarray, budget: int | None) -> tuple[bytes, float]:
    """JPEG bytes, shrunk to fit `budget` when given; (jpeg, encoded pixels per picture pixel)."""
    if budget is None:
        return encode_jpeg(picture, SETTINGS.jpeg_quality), 1.0
    return encode_jpeg_within(picture, SETTINGS.jpeg_quality, budget)


def annotated_jpeg(image: np.ndarray, faces: list[Face], budget: int | None) -> tuple[bytes, float]:
    """Draw on a copy at most ANNOTATE_MAX_SIDE long, encoded once to fit `budget` bytes when given;
    (jpeg, annotated pixels per working pixel)."""
    small = fit_long_side(image, SETTINGS.annotate_max_side)
    k = small.shape[1] / image.shape[1]
    size = small.shape[1::-1]
    drawn = annotate(small, [replace(f, box=_scaled_box(f.box, k, k, size)) for f in faces])
    jpeg, shrink = _encode(drawn, budget)
    return jpeg, k * shrink


def analyze_bytes(data: bytes, options: Options = DEFAULT_OPTIONS, *, max_bytes: int | None = None,
                  jpeg_budget: Callable[[int], int] | None = None) -> Outcome:
    """Decode with limits, analyse, annotate; raise RequestError subclasses for bad input.

    Boxes are in the original (upright) image's pixels, whatever scale it was analysed at.
    `jpeg_budget(faces)`, when given, is the most bytes the annotated JPEG may take for a
    result with that many faces (the HTTP response limit).
    """
    models = runtime.get_models()
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    decoded = load(data, max_bytes=max_bytes or SETTINGS.max_image_bytes, max_pixels=SETTINGS.max_pixels,
                   target_pixels=FAST_WORKING_PIXELS if options.detail == "fast" else None)
    timings["decode"] = (time.perf_counter() - t0) * 1000
    image = decoded.image
    faces = analyze_faces(image, models, options, timings)
    budget = jpeg_budget(len(faces)) if jpeg_budget else None
    annotated, annotated_scale = None, None
    t1 = time.perf_counter()
    if options.annotate:
        annotated, k = annotated_jpeg(image, faces, budget)
        annotated_scale = round(k * decoded.scale, 4)
    timings["annotate"] = (time.perf_counter() - t1) * 1000
    redacted = regions = redacted_scale = None
    if options.redact:  # at the working image's resolution, so every face found is hidden at its size
        t2 = time.perf_counter()
        regions = redaction_regions(image, models, faces, options)
        redacted, k = _encode(pixelate(image, regions), budget)
        redacted_scale = round(k * decoded.scale, 4)
        timings["redact"] = (time.perf_counter() - t2) * 1000
    height, width = image.shape[:2]
    size = (decoded.width, decoded.height)
    sx, sy = decoded.width / width, decoded.height / height
    timings["total"] = (time.perf_counter() - t0) * 1000
    result = {
        "image": {"width": decoded.width, "height": decoded.height, "analysis_scale": round(decoded.scale, 4)},
        "faces_detected": len(faces),
        "faces_analyzed": sum(1 for f in faces if f.analyzed),
        "faces": [face.public(box=_scaled_box(face.box, sx, sy, size), scale=(sx, sy)) for face in faces],
        "timings_ms": {k: round(v, 1) for k, v in timings.items()},
        "models": models.ids,
        "cold_start": runtime.take_cold_start(),
    }
    if regions is not None:
        result["redacted_regions"] = [_scaled_box(r, sx, sy, size) for r in regions]
    return Outcome(result, annotated, annotated_scale, redacted, redacted_scale)


def analyze_file(path: Path, options: Options = DEFAULT_OPTIONS) -> Outcome:
    """One photo file through the one per-photo flow (the CLI, one photo or a folder); OSError or RequestError."""
    return analyze_bytes(path.read_bytes(), options)


def warm_up() -> None:
    """Run every stage once on a synthetic photo, so the first real request pays no first-call costs.

    The nets are already warm; this covers what their dummy forwards don't reach (JPEG
    codecs, resize tables, landmarks and chip extraction, text drawing): it took the
    first request from 1.12x to 1.01x the steady latency (`make bench`).
    """
    t0 = time.perf_counter()
    models = runtime.get_models()
    # 640x480, the commonest coarse-pass input: cv2.dnn's first forward at an input shape it has not
    # seen costs ~8 ms more than the next ones (issue 24), so the first 4:3 photo finds it seen.
    ramp = np.linspace(0, 255, 640, dtype=np.uint8)
    photo = np.dstack([np.tile(ramp, (480, 1))] * 3)
    image = decode(encode_jpeg(photo, SETTINGS.jpeg_quality), max_bytes=SETTINGS.max_image_bytes,
                   max_pixels=SETTINGS.max_pixels)
    analyze(image, models, DEFAULT_OPTIONS)
    # cv2.dnn's second forward at a shape still costs 2-3 ms more than the later ones.
    models["detector"].forward(image, DEFAULT_OPTIONS.min_confidence)
    # A face of 320 px: its chip is cut through the image pyramid, whose first cv2.pyrDown costs ~4 ms.
    face = Face(raw_box=(80.0, 40.0, 400.0, 360.0), box={"x": 80, "y": 40, "width": 320, "height": 320},
                detection_confidence=1.0, inside=1.0, analyzed=True)
    attributes(image, [face], models, DEFAULT_OPTIONS)
    face.label = face_label(face, models.calibration)
    encode_jpeg(annotate(image, [face]), SETTINGS.jpeg_quality)
    pixelate(image, [face.box])
    log("pipeline_warmed", ms=round((time.perf_counter() - t0) * 1000, 1))
