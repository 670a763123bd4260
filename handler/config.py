"""Settings from environment variables, validated once at import.

Every setting is documented in the README's configuration table. A bad value
stops start-up with a message naming the variable, the value and the allowed
range, instead of surfacing later as a wrong answer or a 500.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from handler.errors import ConfigError

PACKAGE_MODELS_DIR = Path(__file__).resolve().parent.parent / "models"

# Lambda's synchronous invocation payload limit (request and response), not a
# tunable: API Gateway and Function URLs refuse anything bigger anyway.
LAMBDA_PAYLOAD_LIMIT = 6 * 1024 * 1024
# The biggest image a request body can carry, raw or base64 in JSON: API Gateway hands a binary body
# to Lambda base64-encoded (4 bytes per 3) inside the event, whose headers and context take up to
# ~128 KB. 4,620,288 bytes (4.4 MiB); bigger photos go through POST /uploads (handler/uploads.py).
DIRECT_IMAGE_LIMIT = (LAMBDA_PAYLOAD_LIMIT - 128 * 1024) * 3 // 4
# A presigned upload's lifetime: long enough for a phone photo over a slow link.
UPLOAD_EXPIRES_S = 900


@dataclass(frozen=True)
class Settings:
    """Validated runtime configuration."""

    model_dir: Path
    min_confidence: float
    max_faces: int
    max_image_bytes: int
    max_pixels: int
    min_gender_confidence: float
    min_face_px: int
    min_sharpness: float
    jpeg_quality: int
    annotate_max_side: int
    detect_max_side: int
    output_bucket: str
    upload_bucket: str
    output_prefix: str
    input_prefix: str
    cors_allow_origin: str
    log_level: str
    write_redacted: bool
    net_clones: int
    detect_threads: int  # OpenCV's threads for the process; 0: one per core this process may use


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity; what OpenCV's own default counts)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _number(env: Mapping[str, str], name: str, default: float, lo: float, hi: float,
            cast: Callable[[str], float]) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = cast(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a valid {cast.__name__}") from None
    if not lo <= value <= hi:
        raise ConfigError(f"{name}={raw} is out of range [{lo}, {hi}]")
    return value


def _flag(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name, "").strip().lower()
    if not raw:
        return default
    if raw not in ("true", "false", "1", "0"):
        raise ConfigError(f"{name}={raw!r} must be true or false")
    return raw in ("true", "1")


def _prefix(env: Mapping[str, str], name: str, default: str) -> str:
    value = env.get(name, default).strip().lstrip("/")
    if value and not value.endswith("/"):
        value += "/"
    return value


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Read and validate settings; raise ConfigError naming the first bad variable."""
    env = os.environ if env is None else env
    model_dir = Path(env.get("MODEL_DIR") or PACKAGE_MODELS_DIR).expanduser().resolve()
    log_level = env.get("LOG_LEVEL", "INFO").strip().upper() or "INFO"
    if log_level not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
        raise ConfigError(f"LOG_LEVEL={log_level!r} must be one of DEBUG, INFO, WARNING, ERROR")
    output_prefix = _prefix(env, "OUTPUT_PREFIX", "results/")
    input_prefix = _prefix(env, "INPUT_PREFIX", "uploads/")
    if not output_prefix:
        # An empty output prefix in the input bucket would make every result an input.
        raise ConfigError("OUTPUT_PREFIX must not be empty")
    if input_prefix and (output_prefix.startswith(input_prefix) or input_prefix.startswith(output_prefix)):
        raise ConfigError(f"OUTPUT_PREFIX={output_prefix!r} and INPUT_PREFIX={input_prefix!r} must not nest")
    return Settings(
        model_dir=model_dir,
        min_confidence=_number(env, "MIN_CONFIDENCE", 0.75, 0.05, 0.99, float),
        # 100, as Rekognition: a face's attributes cost ~0.16x the 640x480 portrait's whole request (docs: "Crowds"),
        # so 100 faces take ~1 s of CPU, far inside the 30 s timeout even with a second age net.
        max_faces=int(_number(env, "MAX_FACES", 100, 1, 100, int)),
        max_image_bytes=int(_number(env, "MAX_IMAGE_BYTES", 20_000_000, 1024, 200_000_000, int)),
        max_pixels=int(_number(env, "MAX_PIXELS", 40_000_000, 10_000, 100_000_000, int)),
        min_gender_confidence=_number(env, "MIN_GENDER_CONFIDENCE", 0.8, 0.5, 1.0, float),
        min_face_px=int(_number(env, "MIN_FACE_PX", 36, 8, 1000, int)),
        min_sharpness=_number(env, "MIN_SHARPNESS", 0.3, 0.0, 1.0, float),
        jpeg_quality=int(_number(env, "JPEG_QUALITY", 85, 30, 100, int)),
        annotate_max_side=int(_number(env, "ANNOTATE_MAX_SIDE", 2048, 256, 8192, int)),
        detect_max_side=int(_number(env, "DETECT_MAX_SIDE", 2048, 300, 8192, int)),
        output_bucket=env.get("OUTPUT_BUCKET", "").strip(),
        upload_bucket=env.get("UPLOAD_BUCKET", "").strip(),
        output_prefix=output_prefix,
        input_prefix=input_prefix,
        cors_allow_origin=env.get("CORS_ALLOW_ORIGIN", "*").strip(),
        log_level=log_level,
        write_redacted=_flag(env, "WRITE_REDACTED", False),
        net_clones=int(_number(env, "NET_CLONES", 1, 1, 64, int)),
        detect_threads=int(_number(env, "DETECT_THREADS", 0, 0, 64, int)),
    )


SETTINGS = load_settings()
