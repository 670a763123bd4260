"""`python -m handler photo.jpg --url API`: analyse a photo with a deployed faceread instead of locally.

A photo that fits in a request (config.DIRECT_IMAGE_LIMIT) is sent to POST /analyze; a bigger one goes
through POST /uploads (a presigned upload straight to the bucket, handler/uploads.py) and GET /uploads/<id>
is polled until the upload trigger has written the result. urllib3 comes with boto3 and requests alike.
"""

from __future__ import annotations

import json
import time

from handler.config import DIRECT_IMAGE_LIMIT
from handler.errors import RequestError
from handler.image_header import sniff_format

_TYPES = {"jpeg": "image/jpeg", "png": "image/png", "webp": "image/webp"}


def _call(http, method: str, url: str, body: bytes | None = None, headers: dict | None = None) -> tuple[int, dict]:
    response = http.request(method, url, body=body, headers=headers or {}, timeout=120.0)
    try:
        payload = json.loads(response.data or b"{}")
    except ValueError:
        payload = {"error": {"code": "bad_answer", "message": f"{method} {url} answered {response.status}, not JSON"}}
    if response.status >= 400:
        error = payload.get("error", {})
        raise RequestError(error.get("message", f"HTTP {response.status}"), code=error.get("code", "http_error"),
                           status=response.status)
    return response.status, payload


def send_upload(http, upload: dict, data: bytes, content_type: str) -> None:
    """Send the photo the way POST /uploads said: a form POST (S3) or a PUT with signed headers (Cloud Storage)."""
    if upload["method"] == "POST":
        import urllib3

        fields = [*upload["fields"].items(), ("file", ("photo", data, content_type))]  # the file goes last
        body, form_type = urllib3.encode_multipart_formdata(fields)
        response = http.request("POST", upload["url"], body=body, headers={"Content-Type": form_type}, timeout=300.0)
    else:
        response = http.request("PUT", upload["url"], body=data, headers=upload["headers"], timeout=300.0)
    if response.status >= 300:
        raise RequestError(f"the upload was refused ({response.status}): {response.data[:300]!r}",
                           code="upload_refused", status=response.status)


def analyze_remote(base_url: str, data: bytes, *, token: str | None = None, wait_s: float = 300.0,
                   poll_s: float = 1.0) -> dict:
    """The result for `data` from the service at `base_url` (direct, or through POST /uploads when too big)."""
    import urllib3

    http = urllib3.PoolManager()
    base = base_url.rstrip("/")
    auth = {"Authorization": f"Bearer {token}"} if token else {}
    content_type = _TYPES.get(sniff_format(data), "application/octet-stream")
    if len(data) <= DIRECT_IMAGE_LIMIT:
        return _call(http, "POST", base + "/analyze?annotate=false", data, {**auth, "Content-Type": content_type})[1]
    request = json.dumps({"content_type": content_type, "bytes": len(data)}).encode()
    _, grant = _call(http, "POST", base + "/uploads", request, {**auth, "Content-Type": "application/json"})
    send_upload(http, grant["upload"], data, content_type)
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        status, answer = _call(http, "GET", base + grant["poll"], headers=auth)
        if status == 200:
            return answer
        time.sleep(poll_s)
    raise RequestError(f"no result after {wait_s:.0f} s; poll {base}{grant['poll']} later", code="timeout", status=504)
