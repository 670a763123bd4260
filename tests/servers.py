"""Real servers on 127.0.0.1 for integration and browser tests: functions-framework, moto, GCS emulator."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, timeout: float = 60.0, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before answering {url}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except urllib.error.HTTPError:
            return  # it answered
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"{url} did not answer within {timeout} s")


@contextmanager
def functions_framework(target: str, signature: str = "http", env: dict | None = None,
                        ready_path: str = "/health") -> Iterator[str]:
    """Run `functions-framework --target TARGET` on a free port; yield its base URL."""
    port = free_port()
    cmd = [str(BIN / "functions-framework"), "--source", str(ROOT / "handler" / "gcp.py"), "--target", target,
           "--signature-type", signature, "--host", "127.0.0.1", "--port", str(port)]
    log = open(ROOT / "build" / f"ff-{target}-{port}.log", "w") if (ROOT / "build").is_dir() else subprocess.DEVNULL
    proc = subprocess.Popen(cmd, cwd=ROOT, env={**os.environ, **(env or {})}, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_http(base + ready_path, proc=proc)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


@contextmanager
def moto_server() -> Iterator[str]:
    """moto in server mode on 127.0.0.1: a real S3 endpoint for boto3."""
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@contextmanager
def gcs_emulator() -> Iterator[str]:
    """gcp-storage-emulator on 127.0.0.1 (in memory); yields host:port for STORAGE_EMULATOR_HOST."""
    port = free_port()
    proc = subprocess.Popen([str(BIN / "gcp-storage-emulator"), "start", "--host", "127.0.0.1", "--port", str(port),
                             "--in-memory"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_http(base + "/storage/v1/b", proc=proc)
        yield base
    finally:
        proc.terminate()
        proc.wait(10)
