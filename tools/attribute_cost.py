#!/usr/bin/env python3
"""Attribute time per face here against another checkout, paired in one run (issue 19's cost target).

    .venv/bin/python tools/attribute_cost.py --baseline /path/to/main-checkout [--rounds 5]

Each round starts one fresh process per checkout, in turn (A B A B ...), each importing its own
`handler` with its own models, and analysing the 4-face and the 1-face test photos `--steady`
times; a process reports the median of the pipeline's own `timings_ms.attributes` per analysed
face. Printed: the median over rounds per checkout and the median of the per-round ratios.
The baseline needs its models in place (`make models` there, or links to the same files).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

WORKER = r"""
import json, statistics, sys
sys.path[:0] = [".", "tests"]
import handler
from helpers import jpeg, tiled, fixture_image
from handler.service import analyze_bytes
images = {"4 faces": jpeg(tiled(["astronaut.png", "camera.png", "astronaut.png", "camera.png"], size=480)),
          "1 face": jpeg(fixture_image("astronaut.png"))}
out = {}
for name, data in images.items():
    per_face = []
    for _ in range(int(sys.argv[1])):
        r = analyze_bytes(data).result
        per_face.append(r["timings_ms"]["attributes"] / max(1, r["faces_analyzed"]))
    out[name] = statistics.median(per_face)
print("COST " + json.dumps(out))
"""


def run(checkout: Path, steady: int) -> dict:
    env = {**os.environ, "LOG_LEVEL": "WARNING"}
    env.pop("MODEL_DIR", None)
    proc = subprocess.run([sys.executable, "-c", WORKER, str(steady)], cwd=checkout, env=env, capture_output=True,
                          text=True, timeout=600)
    line = [x for x in proc.stdout.splitlines() if x.startswith("COST ")]
    if not line:
        raise SystemExit(f"{checkout}: {proc.stderr[-2000:]}")
    return json.loads(line[0][5:])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--baseline", type=Path, required=True)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--steady", type=int, default=15)
    args = ap.parse_args()
    here, base = [], []
    for i in range(args.rounds):
        here.append(run(ROOT, args.steady))
        base.append(run(args.baseline, args.steady))
        print(f"round {i + 1}: here {here[-1]}, baseline {base[-1]}", file=sys.stderr)
    print("| photo | attributes ms/face here | baseline | ratio (median of paired rounds) |\n|---|---|---|---|")
    for name in here[0]:
        h, b = [r[name] for r in here], [r[name] for r in base]
        ratio = statistics.median(x / y for x, y in zip(h, b))
        print(f"| {name} | {statistics.median(h):.1f} | {statistics.median(b):.1f} | {ratio:.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
