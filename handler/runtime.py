"""Process-wide state: the nets (loaded once, under a lock) and the cold-start flag."""

from __future__ import annotations

import threading
import time
from typing import Any

from handler.config import SETTINGS, usable_cores
from handler.logs import log
from handler.models import Models, load_models

_lock = threading.Lock()
_models: Models | None = None
_cold = True


def _log_net(adapter: Any) -> None:
    log("model_loaded", net=adapter.spec.key, id=adapter.spec.id, load_ms=round(adapter.load_ms, 1),
        warm_ms=round(adapter.warm_ms, 1))


def get_models() -> Models:
    """The loaded, warmed nets; the first caller loads them, concurrent callers wait."""
    global _models
    if _models is None:
        with _lock:
            if _models is None:
                t0 = time.perf_counter()
                _models = load_models(SETTINGS.model_dir, on_loaded=_log_net, clones=SETTINGS.net_clones,
                                      threads=SETTINGS.detect_threads or usable_cores())
                log("models_ready", total_ms=round((time.perf_counter() - t0) * 1000, 1),
                    model_dir=str(SETTINGS.model_dir))
    return _models


def is_warm() -> bool:
    """True once the nets are loaded and warmed."""
    return _models is not None


def take_cold_start() -> bool:
    """True for the first analysis in this process (or after a snapshot restore), then False."""
    global _cold
    with _lock:
        cold, _cold = _cold, False
    return cold


def peek_cold_start() -> bool:
    """Whether the next analysis will be the first, without consuming the flag."""
    return _cold


def reset_after_restore() -> None:
    """A SnapStart restore is a new sandbox: its first request is a cold start again."""
    global _cold
    with _lock:
        _cold = True
