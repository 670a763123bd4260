#!/usr/bin/env python3
"""Issue 24's targets as same-run ratios against another checkout: alternating fresh processes, medians.

    git worktree add /tmp/base 62cdc8d && ln -s "$PWD/.venv" /tmp/base/.venv   # + models, tests/fixtures
    .venv/bin/python tools/paired_bench.py /tmp/base [--rounds 6] [--steady 7]
    .venv/bin/python tools/paired_bench.py /tmp/base --startup 11   # start-up only (issue 24, item 7)

Photos: woman1.jpg (../shared/photos; else astronaut.png) at 640x480 and upscaled to 4000x3000 (the
latter through the Lambda handler, JSON only), the 6-person group fixture, and 24 faces pasted in
12 MP (as `make bench`), all with `annotate=false`. Each round runs one process per tree, in
alternating order; a process warms up, times its first request and `--steady` more per photo.
Printed: the median over processes of each process's steady median, per tree, and new / base.
`--startup N`: N rounds of three fresh processes in rotating order, `import handler` (nets loaded and
warmed) in each tree and a bare `import cv2, numpy`; the medians of their wall times and the ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

WORKER = r"""
import base64, copy, json, sys, time
t0 = time.perf_counter()
import handler
out = {"import_to_warmed": (time.perf_counter() - t0) * 1000}
from handler import aws
from handler.service import DEFAULT_OPTIONS, analyze_bytes
photos, steady = json.loads(sys.argv[1]), int(sys.argv[2])
options = DEFAULT_OPTIONS.merged({"annotate": False})
event = json.load(open("tests/events/apiGatewayProxyV2Event.json"))
for name, (path, via_lambda) in photos.items():
    data = open(path, "rb").read()
    ev = dict(copy.deepcopy(event), body=base64.b64encode(data).decode(), rawQueryString="annotate=false",
              headers={"content-type": "image/jpeg"})
    def run():
        t = time.perf_counter()
        if via_lambda:
            assert aws.lambda_handler(ev, None)["statusCode"] == 200
        else:
            analyze_bytes(data, options)
        return (time.perf_counter() - t) * 1000
    first = run()
    out[name] = {"first": first, "steady": [run() for _ in range(steady)]}
print(json.dumps(out))
"""


def make_photos(tmp: Path) -> dict[str, tuple[str, bool]]:
    from helpers import fixture_image, jpeg

    from evaluation.group_recall import background, paste_canvas

    woman = cv2.imread(str(ROOT.parent / "shared" / "photos" / "woman1.jpg"))
    if woman is None:
        woman = fixture_image("astronaut.png")
    faces = [(fixture_image("astronaut.png")[37:197, 146:306], "a", "female"),
             (fixture_image("camera.png")[101:211, 172:282], "c", "male")] * 12
    group, _ = paste_canvas(background(4000, 3000), faces, 250, np.random.default_rng(1))
    images = {"portrait 640x480": (cv2.resize(woman, (640, 480), interpolation=cv2.INTER_AREA), False),
              "1 face 4000x3000, Lambda": (cv2.resize(woman, (4000, 3000), interpolation=cv2.INTER_CUBIC), True),
              "6 people 1280x886": (fixture_image("group6.jpg"), False),
              "24 faces 12 MP": (group, False)}
    out = {}
    for i, (name, (image, via_lambda)) in enumerate(images.items()):
        path = tmp / f"photo{i}.jpg"
        path.write_bytes(jpeg(image))
        out[name] = (str(path), via_lambda)
    return out


def startup(trees: list[Path], rounds: int) -> None:
    """Whole-process wall times: `import handler` in each tree and a bare `import cv2, numpy`, rotated."""
    kinds = [("base", trees[0], "import handler"), ("new", trees[1], "import handler"),
             ("bare", trees[1], "import cv2, numpy")]
    wall: dict[str, list[float]] = {name: [] for name, _, _ in kinds}
    for r in range(rounds):
        for name, tree, code in kinds[r % 3:] + kinds[:r % 3]:
            t = time.perf_counter()
            subprocess.run([str(tree / ".venv/bin/python"), "-c", code], cwd=tree, check=True,
                           env={**os.environ, "LOG_LEVEL": "WARNING", "PYTHONPATH": str(tree)})
            wall[name].append((time.perf_counter() - t) * 1000)
    med = {name: statistics.median(times) for name, times in wall.items()}
    print(f"{rounds} rounds; load average {os.getloadavg()[0]:.1f}; whole-process wall ms, medians")
    for name, ms in med.items():
        print(f"{name:5} {ms:7.1f}  x bare {ms / med['bare']:.2f}")
    print(f"new / base {med['new'] / med['base']:.2f}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("base", type=Path, help="the other checkout (with .venv, models and tests/fixtures)")
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--steady", type=int, default=7)
    ap.add_argument("--startup", type=int, metavar="N", help="only start-up: N rounds of fresh processes")
    args = ap.parse_args(argv)
    trees = [args.base.resolve(), ROOT]
    if args.startup:
        startup(trees, args.startup)
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        photos = make_photos(Path(tmp))
        runs: dict[Path, list[dict]] = {t: [] for t in trees}
        for r in range(args.rounds):
            for tree in trees if r % 2 == 0 else trees[::-1]:
                proc = subprocess.run([str(tree / ".venv/bin/python"), "-c", WORKER, json.dumps(photos),
                                       str(args.steady)], cwd=tree, capture_output=True, text=True,
                                      env={**os.environ, "LOG_LEVEL": "WARNING", "PYTHONPATH": str(tree)})
                if proc.returncode:
                    raise SystemExit(f"{tree}: {proc.stderr[-2000:]}")
                runs[tree].append(json.loads(proc.stdout.strip().splitlines()[-1]))
    base, new = trees

    def steady(tree: Path, name: str) -> float:
        return statistics.median(statistics.median(run[name]["steady"]) for run in runs[tree])

    print(f"{args.rounds} processes per tree, {args.steady} steady requests each; base {base}")
    print(f"{'photo':26} {'base ms':>9} {'new ms':>9} {'new/base':>9}")
    for name in photos:
        b, n = steady(base, name), steady(new, name)
        print(f"{name:26} {b:9.1f} {n:9.1f} {n / b:9.2f}")
    for tree in trees:
        first = statistics.median(run["portrait 640x480"]["first"] for run in runs[tree])
        print(f"{'base' if tree == base else 'new '}: first portrait request / steady "
              f"{first / steady(tree, 'portrait 640x480'):.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
