"""One JSON object per log line, on stdout (CloudWatch and Cloud Logging parse it); stderr for the CLIs.

Hand-written rather than aws-lambda-powertools' Logger: with its event classes, 28-79 ms of
import on the hot path here, and we need only this.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from handler.config import SETTINGS

_logger = logging.getLogger("faceread")
_logger.setLevel(SETTINGS.log_level)
_logger.propagate = False  # Lambda's root handler would wrap our JSON in its own text format
if not _logger.handlers:
    # `python -m handler` and `python -m evaluation.evaluate` print their results on stdout. While
    # Python imports the package for them argv[0] is still "-m", so their logs go to stderr and
    # `python -m handler photo.jpg | jq` works; servers and Lambda keep stdout.
    _stream = logging.StreamHandler(sys.stderr if sys.argv[:1] == ["-m"] else sys.stdout)
    _stream.setFormatter(logging.Formatter("%(message)s"))
    _logger.addHandler(_stream)


# The platform's id for the current invocation, added to every line logged while it runs.
request_id: ContextVar[str | None] = ContextVar("request_id", default=None)


@contextmanager
def invocation(platform_id: str | None) -> Iterator[None]:
    """Tag every line logged inside the block with the platform's invocation id."""
    token = request_id.set(platform_id)
    try:
        yield
    finally:
        request_id.reset(token)


def log(event: str, level: int = logging.INFO, **fields: object) -> None:
    """Emit one structured line: {"ts", "level", "event", "request_id", **fields}."""
    if _logger.isEnabledFor(level):
        record = {"ts": round(time.time(), 3), "level": logging.getLevelName(level), "event": event,
                  "request_id": request_id.get(), **fields}
        _logger.log(level, json.dumps(record, default=str, separators=(",", ":")))
