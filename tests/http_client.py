"""A tiny stdlib HTTP client for tests: (status, headers, body) without raising on 4xx/5xx."""

from __future__ import annotations

import json
import urllib.error
import urllib.request


def call(url: str, body: bytes | None = None, method: str | None = None,
         headers: dict[str, str] | None = None, timeout: float = 60) -> tuple[int, dict, bytes]:
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read()


def post_json(url: str, payload: object, **kw) -> tuple[int, dict]:
    status, _, body = call(url, json.dumps(payload).encode(), "POST", {"Content-Type": "application/json"}, **kw)
    return status, json.loads(body)
