"""The one entry every edge calls: image bytes + options -> result JSON (+ annotated JPEG)."""

from __future__ import annotations

import time
from dataclasses import dataclass

from handler import runtime
from handler.annotate import annotate
from handler.config import SETTINGS
from handler.imaging import decode, encode_jpeg
from handler.logs import log
from handler.pipeline import Face, Options, analyze, attributes, face_label

DEFAULT_OPTIONS = Options(
    min_confidence=SETTINGS.min_confidence,
    max_faces=SETTINGS.max_faces,
    min_gender_confidence=SETTINGS.min_gender_confidence,
    min_face_px=SETTINGS.min_face_px,
    min_sharpness=SETTINGS.min_sharpness,
)


@dataclass(frozen=True)
class Outcome:
    """What an analysis produced: the JSON-ready result and the annotated JPEG (or None)."""

    result: dict
    annotated_jpeg: bytes | None


def parse_options(request_options: object) -> Options:
    """Defaults from the environment, narrowed by the request's `options` object."""
    return DEFAULT_OPTIONS.merged(request_options)


def analyze_bytes(data: bytes, options: Options = DEFAULT_OPTIONS, *, max_bytes: int | None = None) -> Outcome:
    """Decode with limits, analyse, annotate; raise RequestError subclasses for bad input."""
    models = runtime.get_models()
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    image = decode(data, max_bytes=max_bytes or SETTINGS.max_image_bytes, max_pixels=SETTINGS.max_pixels)
    timings["decode"] = (time.perf_counter() - t0) * 1000
    faces = analyze(image, models, options, timings)
    annotated = None
    t1 = time.perf_counter()
    if options.annotate:
        annotated = encode_jpeg(annotate(image, faces), SETTINGS.jpeg_quality)
    timings["annotate"] = (time.perf_counter() - t1) * 1000
    timings["total"] = (time.perf_counter() - t0) * 1000
    height, width = image.shape[:2]
    result = {
        "image": {"width": width, "height": height},
        "faces_detected": len(faces),
        "faces_analyzed": sum(1 for f in faces if f["analyzed"]),
        "faces": faces,
        "timings_ms": {k: round(v, 1) for k, v in timings.items()},
        "models": models.ids,
        "cold_start": runtime.take_cold_start(),
    }
    return Outcome(result, annotated)


def warm_up() -> None:
    """Run every stage once on a synthetic photo, so the first real request pays no first-call costs.

    The nets are already warm; this covers what their dummy forwards don't reach (JPEG
    codecs, resize tables, landmarks and chip extraction, text drawing): it took the
    first request from 1.12x to 1.01x the steady latency (`make bench`).
    """
    import numpy as np

    t0 = time.perf_counter()
    models = runtime.get_models()
    ramp = np.linspace(0, 255, 640, dtype=np.uint8)
    photo = np.dstack([np.tile(ramp, (480, 1))] * 3)
    image = decode(encode_jpeg(photo, SETTINGS.jpeg_quality), max_bytes=SETTINGS.max_image_bytes,
                   max_pixels=SETTINGS.max_pixels)
    analyze(image, models, DEFAULT_OPTIONS)
    face = Face(raw_box=(240.0, 160.0, 400.0, 320.0), box={"x": 240, "y": 160, "width": 160, "height": 160},
                detection_confidence=1.0, inside=1.0, analyzed=True)
    attributes(image, [face], models, DEFAULT_OPTIONS)
    face.label = face_label(face, models.calibration)
    encode_jpeg(annotate(image, [face.public()]), SETTINGS.jpeg_quality)
    log("pipeline_warmed", ms=round((time.perf_counter() - t0) * 1000, 1))
