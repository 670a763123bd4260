#!/usr/bin/env python3
"""`make bench-backfill`: a local backfill of N images through the real per-object flow against moto.

Uploads N copies of a 640x480 one-face JPEG (each a distinct object) to moto in server mode on
127.0.0.1, then runs `python -m bulk --local P` for each process count, and once more
to time the skip rule (every object already analysed: one HEAD each, no inference). Prints a table:
images/s and ms per image per process. Not part of the test suite; nothing here asserts.

    .venv/bin/python tools/bench_backfill.py [--images 1000] [--processes 1 2]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--processes", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()

    import boto3
    import cv2
    from helpers import fixture_image, jpeg
    from servers import moto_server

    os.environ.update(AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench", AWS_DEFAULT_REGION="us-east-1",
                      LOG_LEVEL="WARNING")
    from bulk.__main__ import main as bulk_main

    photo = jpeg(cv2.resize(fixture_image("camera.png"), (640, 480)))
    # Same-run baseline: the analysis alone, in this process (the machine is shared; compare ratios).
    from handler.service import analyze_bytes

    bare = []
    for _ in range(21):
        t0 = time.perf_counter()
        analyze_bytes(photo)
        bare.append((time.perf_counter() - t0) * 1000)
    bare_ms = statistics.median(bare[1:])
    rows = []
    with moto_server() as endpoint:
        s3 = boto3.client("s3", endpoint_url=endpoint)
        for n_proc in args.processes:
            bucket, out = f"bench-in-{n_proc}", f"bench-out-{n_proc}"
            s3.create_bucket(Bucket=bucket)
            s3.create_bucket(Bucket=out)
            for i in range(args.images):
                s3.put_object(Bucket=bucket, Key=f"uploads/{i:06d}.jpg", Body=photo)
            argv = ["--bucket", bucket, "--output-bucket", out, "--local", str(n_proc), "--endpoint-url", endpoint]
            for run in ("analyse", "re-run (skip rule)"):
                t0 = time.perf_counter()
                with contextlib.redirect_stdout(io.StringIO()) as captured:
                    bulk_main(argv)
                seconds = time.perf_counter() - t0
                totals = json.loads(captured.getvalue().strip().splitlines()[-1])
                rows.append((n_proc, run, totals["images"], totals["analyzed"], seconds))
    print(f"\nLocal backfill against moto on 127.0.0.1, {args.images} x 640x480 one-face JPEG "
          f"({len(photo):,} bytes), {os.cpu_count()} CPUs; wall clock includes process start-up and listing")
    print(f"{'processes':>9}  {'run':<20}  {'images':>6}  {'analysed':>8}  {'seconds':>7}  {'images/s':>8}  "
          f"{'ms/image/process':>16}")
    for n_proc, run, images, analysed, seconds in rows:
        print(f"{n_proc:>9}  {run:<20}  {images:>6}  {analysed:>8}  {seconds:>7.1f}  {images / seconds:>8.1f}  "
              f"{seconds * 1000 * n_proc / images:>16.1f}")
    print(f"\nsame run, analysis alone (decode, detect, attributes, annotate + encode), median of 20: "
          f"{bare_ms:.1f} ms; load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
