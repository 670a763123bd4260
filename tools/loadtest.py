#!/usr/bin/env python3
"""Load test: a real functions-framework server on 127.0.0.1 under concurrent mixed traffic.

Usage (project venv, from the repo root; stdlib only, reuses tests/servers.py):

    .venv/bin/python tools/loadtest.py [--requests 500] [--concurrency 8 32] [--no-12mp]

Traffic is a fixed mix: 1 face (camera.png), 4 faces (four photos tiled, as in the tests), no face
(coffee.png) and a bad image (text, a 400). Every answer is compared with the sequential answer for
the same input (JSON minus timings and cold_start, so the annotated JPEG must match byte for byte):
`wrong` must be 0, and so must `5xx` (which also counts connection errors).

Printed per concurrency: requests, wrong, 5xx, latency p50/p95/p99 (ms), throughput (req/s and per
core: os.cpu_count(); client and server share the machine) and the peak RSS (VmHWM, reset before each
run when /proc/<pid>/clear_refs allows) of the gunicorn master and worker, read from /proc.
Then the 12 MP photo: a 4000x3000 JPEG (astronaut.png upscaled) sent once, the worker's VmRSS
before and VmHWM after (peak reset the same way), against the template's 2048 MB default MemorySize.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import cv2  # noqa: E402
from helpers import fixture_bytes, fixture_image, jpeg, tiled  # noqa: E402
from http_client import call  # noqa: E402
from procfs import reset_peak, server_pids, status_kb  # noqa: E402
from servers import functions_framework  # noqa: E402

LAMBDA_MEMORY_MB = 2048  # template.yaml MemorySize default


def inputs() -> dict[str, bytes]:
    return {
        "1 face": fixture_bytes("camera.png"),
        "4 faces": jpeg(tiled(["astronaut.png", "camera.png", "astronaut.png", "camera.png"], size=480)),
        "no face": fixture_bytes("coffee.png"),
        "bad (text)": b"this is not an image, it is text",
    }


def answer(base: str, body: bytes) -> tuple[int, object]:
    """(status, comparable answer): the JSON without timings and cold_start."""
    status, _, raw = call(base + "/analyze", body, "POST", {"Content-Type": "application/octet-stream"}, timeout=120)
    try:
        payload = json.loads(raw)
    except ValueError:
        return status, raw[:200]
    if isinstance(payload, dict):
        payload.pop("timings_ms", None)
        payload.pop("cold_start", None)
    return status, payload


def mb(kb: int) -> float:
    return kb / 1024


def run(base: str, bodies: dict[str, bytes], expected: dict[str, tuple[int, object]], requests: int,
        concurrency: int) -> dict:
    names = list(bodies)
    jobs = [names[(i * 7 + i // len(names)) % len(names)] for i in range(requests)]  # interleaved mix

    def one(name: str) -> tuple[str, float, int, object]:
        t0 = time.perf_counter()
        try:
            status, got = answer(base, bodies[name])
        except OSError as exc:  # connection refused/reset: as bad as a 5xx
            status, got = 599, repr(exc)
        return name, (time.perf_counter() - t0) * 1000, status, got

    t0 = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        results = list(pool.map(one, jobs))
    wall = time.perf_counter() - t0
    latencies = [ms for _, ms, _, _ in results]
    q = statistics.quantiles(latencies, n=100, method="inclusive")
    wrong = [(n, s) for n, _, s, got in results if (s, got) != expected[n] and s < 500]
    return {
        "concurrency": concurrency, "requests": requests, "wrong": len(wrong),
        "5xx": sum(1 for _, _, s, _ in results if s >= 500),
        "p50": q[49], "p95": q[94], "p99": q[98], "rps": requests / wall,
        "rps_core": requests / wall / (os.cpu_count() or 1), "wrong_examples": wrong[:3],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[8, 32])
    parser.add_argument("--no-12mp", action="store_true", help="skip the 12 MP peak-RSS measurement")
    args = parser.parse_args()

    bodies = inputs()
    with functions_framework("http_analyze") as base:
        master, workers = server_pids(base)
        print(f"server {base}: master pid {master}, workers {workers}; "
              f"{os.cpu_count()} cores; gunicorn threads {os.environ.get('THREADS', (os.cpu_count() or 1) * 4)}")
        expected = {name: answer(base, body) for name, body in bodies.items()}  # sequential reference
        for name, (status, payload) in expected.items():
            faces = payload.get("faces_detected") if isinstance(payload, dict) else None
            code = payload.get("error", {}).get("code") if isinstance(payload, dict) else None
            print(f"  reference {name:<11} status {status} faces {faces} {code or ''}")

        if not args.no_12mp:
            photo = jpeg(cv2.resize(fixture_image("astronaut.png"), (4000, 3000), interpolation=cv2.INTER_CUBIC))
            worker = workers[0]
            rss_before = status_kb(worker, "VmRSS")
            reset = reset_peak(worker)
            hwm_before = status_kb(worker, "VmHWM")
            t0 = time.perf_counter()
            status, payload = answer(base, photo)
            ms = (time.perf_counter() - t0) * 1000
            hwm_after = status_kb(worker, "VmHWM")
            print(f"\n12 MP photo (4000x3000 JPEG, {len(photo) / 1e6:.1f} MB): status {status}, "
                  f"faces {payload.get('faces_detected') if isinstance(payload, dict) else '?'}, {ms:.0f} ms")
            print(f"  worker VmRSS before {mb(rss_before):.0f} MB, VmHWM before {mb(hwm_before):.0f} MB"
                  f"{' (peak reset)' if reset else ' (peak NOT reset: includes earlier requests)'}, "
                  f"VmHWM after {mb(hwm_after):.0f} MB (+{mb(hwm_after - hwm_before):.0f} MB); "
                  f"{100 * hwm_after / 1024 / LAMBDA_MEMORY_MB:.0f}% of {LAMBDA_MEMORY_MB} MB")

        rows = []
        for concurrency in args.concurrency:
            for pid in (master, *server_pids(base)[1]):
                reset_peak(pid)  # the peak of this run alone (when /proc allows the reset)
            row = run(base, bodies, expected, args.requests, concurrency)
            row["hwm_master"], row["hwm_worker"] = status_kb(master, "VmHWM"), max(
                status_kb(w, "VmHWM") for w in server_pids(base)[1])
            rows.append(row)
        alive = call(base + "/health")[0]

    print()
    header = (f"{'conc':>4} {'requests':>8} {'wrong':>5} {'5xx':>4} {'p50 ms':>7} {'p95 ms':>7} {'p99 ms':>7} "
              f"{'req/s':>6} {'req/s/core':>10} {'peak RSS master/worker MB':>26}")
    print(header)
    print("-" * len(header))
    for r in rows:
        print(f"{r['concurrency']:>4} {r['requests']:>8} {r['wrong']:>5} {r['5xx']:>4} {r['p50']:>7.0f} "
              f"{r['p95']:>7.0f} {r['p99']:>7.0f} {r['rps']:>6.1f} {r['rps_core']:>10.1f} "
              f"{mb(r['hwm_master']):>12.0f} / {mb(r['hwm_worker']):<11.0f}")
        for example in r["wrong_examples"]:
            print(f"     wrong answer: {example}")
    print(f"\nserver still healthy after the runs: /health -> {alive}")
    failed = any(r["wrong"] or r["5xx"] for r in rows) or alive != 200
    print("FAIL" if failed else "OK: zero wrong answers, zero 5xx")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
