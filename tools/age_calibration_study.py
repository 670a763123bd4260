#!/usr/bin/env python3
"""Would a calibration of the age net's expected age pay? Fit on half the set, score the other half.

    .venv/bin/python -m evaluation.evaluate ../shared/utkface-dev --json /tmp/eval.json
    .venv/bin/python tools/age_calibration_study.py /tmp/eval.json

Reads the per-image predictions `evaluation.evaluate --json` wrote. Fits, on the
even rows only, y = x + c * max(x - k, 0) (a stretch above a knot: the net
shrinks ages towards the middle and caps at 80) by grid search on MAE, then
prints MAE per label decade on the odd rows, raw and calibrated. The study
decides whether the shipped pipeline calibrates (docs/accuracy.md).
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path


def stretch(x: float, knot: float, slope: float) -> float:
    return x + slope * max(x - knot, 0.0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("eval_json", type=Path, help="the file `python -m evaluation.evaluate --json` wrote")
    args = ap.parse_args()
    images = [i for i in json.loads(args.eval_json.read_text())["images"] if i["faceread"]["years"] is not None]
    fit, held_out = images[0::2], images[1::2]

    def mae(rows: list[dict], knot: float, slope: float) -> float:
        return statistics.mean(abs(stretch(i["faceread"]["years"], knot, slope) - i["age"]) for i in rows)

    grid = [(k, c / 50) for k in range(10, 72, 2) for c in range(0, 76)]
    knot, slope = min(grid, key=lambda kc: mae(fit, *kc))
    print(f"fitted on {len(fit)} even rows: y = x + {slope:.2f} * max(x - {knot}, 0)")
    print("| label decade | held-out faces | MAE raw | MAE calibrated |")
    print("|---|---|---|---|")
    for lo in [*range(0, 80, 10), 80]:
        rows = [i for i in held_out if lo <= i["age"] < (lo + 10 if lo < 80 else 1000)]
        name = f"{lo}-{lo + 9}" if lo < 80 else "80+"
        print(f"| {name} | {len(rows)} | {mae(rows, knot, 0):.2f} | {mae(rows, knot, slope):.2f} |")
    print(f"| **all** | {len(held_out)} | {mae(held_out, knot, 0):.2f} | {mae(held_out, knot, slope):.2f} |")


if __name__ == "__main__":
    main()
