"""Typed errors with stable codes and HTTP statuses.

The pipeline raises `RequestError` subclasses for anything a client can fix;
every edge turns them into `{"error": {"code", "message"}}` with `status`.
Codes are stable strings: clients may switch on them. Messages never echo
request content.
"""

from __future__ import annotations


class ConfigError(RuntimeError):
    """A setting from the environment is invalid (raised at import)."""


class ModelError(RuntimeError):
    """A model file is missing, corrupt or cannot be loaded (raised at import)."""


class RequestError(Exception):
    """A client error: maps to a 4xx response with a stable code."""

    status = 400
    code = "bad_request"

    def __init__(self, message: str, *, code: str | None = None, status: int | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.headers = headers or {}
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status

    def to_dict(self) -> dict:
        """The JSON error body every edge returns."""
        return {"error": {"code": self.code, "message": self.message}}


class InvalidImage(RequestError):
    """The bytes are not a decodable image."""

    status = 400
    code = "invalid_image"


class UnsupportedMediaType(RequestError):
    """A known format we do not accept (GIF, TIFF...) or a wrong Content-Type."""

    status = 415
    code = "unsupported_media_type"


class PayloadTooLarge(RequestError):
    """Too many bytes, or a header declaring too many pixels."""

    status = 413
    code = "payload_too_large"


class BodyTooLarge(PayloadTooLarge):
    """An image too big for a request body: the answer names the limit and the way round it."""

    def __init__(self, message: str, limit: int) -> None:
        super().__init__(f"{message}; the limit for an image in the request is {limit:,} bytes: "
                         "for a bigger photo, POST /uploads for a presigned upload and poll the result")
        self.limit = limit

    def to_dict(self) -> dict:
        return {"error": {"code": self.code, "message": self.message, "limit_bytes": self.limit,
                          "upload_route": "POST /uploads"}}
