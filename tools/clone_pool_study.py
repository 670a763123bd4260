"""NET_CLONES: requests/s and peak RSS with 1, 2 (one per core) and 16 (one per thread) copies of each net.

    .venv/bin/python tools/clone_pool_study.py [--reps 5] [--requests 80] [--threads 16] [--clones 1 2 16]

Each rep runs one fresh process per clone count, in turn (so a drift in the shared machine's
speed hits them alike): 16 threads send the 1-face photo through `service.analyze_bytes`.
Prints the median req/s, the median of each rep's ratio to the first clone count, peak RSS and CPU
ms per request. `NET_CLONES=N make loadtest` measures the same through functions-framework.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

WORKER = r"""
import sys, time
from concurrent.futures import ThreadPoolExecutor
import handler  # loads NET_CLONES copies of each net
from handler.service import analyze_bytes
data, n, threads = open("tests/fixtures/camera.png", "rb").read(), int(sys.argv[1]), int(sys.argv[2])
with ThreadPoolExecutor(threads) as pool:
    list(pool.map(lambda _: analyze_bytes(data), range(2 * threads)))
    t, c = time.perf_counter(), time.process_time()
    list(pool.map(lambda _: analyze_bytes(data), range(n)))
    wall, cpu = time.perf_counter() - t, time.process_time() - c
hwm = int([l for l in open("/proc/self/status") if l.startswith("VmHWM")][0].split()[1]) / 1024
print(n / wall, hwm, cpu / n * 1000)
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--requests", type=int, default=80)
    parser.add_argument("--threads", type=int, default=16)
    parser.add_argument("--clones", type=int, nargs="+", default=[1, 2, 16])
    args = parser.parse_args()
    runs: dict[int, list[tuple[float, float, float]]] = {c: [] for c in args.clones}
    for _ in range(args.reps):
        for clones in args.clones:
            env = {**os.environ, "NET_CLONES": str(clones), "LOG_LEVEL": "ERROR"}
            out = subprocess.run([sys.executable, "-c", WORKER, str(args.requests), str(args.threads)], cwd=ROOT,
                                 env=env, capture_output=True, text=True, check=True).stdout.split()
            runs[clones].append(tuple(map(float, out)))
    base = [r[0] for r in runs[args.clones[0]]]
    print(f"{args.threads} threads, {args.requests} requests per run, {args.reps} reps, medians")
    print(f"{'NET_CLONES':>10} {'req/s':>7} {'ratio':>6} {'peak RSS MB':>11} {'CPU ms/req':>10}")
    for clones, rows in runs.items():
        ratio = statistics.median(r[0] / b for r, b in zip(rows, base))
        print(f"{clones:>10} {statistics.median(r[0] for r in rows):>7.1f} {ratio:>6.2f} "
              f"{statistics.median(r[1] for r in rows):>11.0f} {statistics.median(r[2] for r in rows):>10.1f}")


if __name__ == "__main__":
    main()
