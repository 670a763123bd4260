#!/usr/bin/env python3
"""What a face costs: attributes and drawing against the 640x480 portrait, in one run (MAX_FACES's default).

    MAX_FACES=100 .venv/bin/python tools/max_faces_bench.py [--runs 5]

One warmed process; each round runs the portrait, the bench's 24-face 12 MP photo at max_faces 10 and 24,
and a 100-face 12 MP grid at max_faces 10 and 100; medians per stage (timings_ms) and ratios to the
portrait's total. A face's marginal attribute cost is the attributes difference over the extra faces.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]


def photos() -> dict[str, bytes]:
    from helpers import fixture_image, jpeg

    from tools.group_recall import background, paste_canvas
    crops = [(fixture_image("astronaut.png")[37:197, 146:306], "a", "female"),
             (fixture_image("camera.png")[101:211, 172:282], "c", "male")]
    group, _ = paste_canvas(background(4000, 3000), crops * 12, 250, np.random.default_rng(1))
    grid = background(4000, 3000)
    for k in range(100):
        x, y = 500 + (k % 10) * 300, 20 + (k // 10) * 300
        grid[y:y + 250, x:x + 250] = cv2.resize(crops[k % 2][0], (250, 250), interpolation=cv2.INTER_CUBIC)
    portrait = cv2.resize(fixture_image("astronaut.png"), (640, 480), interpolation=cv2.INTER_AREA)
    return {"portrait": jpeg(portrait), "24 faces": jpeg(group), "100 faces": jpeg(grid)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    from handler.config import SETTINGS
    from handler.service import DEFAULT_OPTIONS, analyze_bytes
    if SETTINGS.max_faces < 100:
        raise SystemExit("run with MAX_FACES=100")
    data = photos()
    cases = {"portrait 640x480": ("portrait", 1), "24 faces 12 MP, max_faces 10": ("24 faces", 10),
             "24 faces 12 MP, max_faces 24": ("24 faces", 24), "100 faces 12 MP, max_faces 10": ("100 faces", 10),
             "100 faces 12 MP, max_faces 100": ("100 faces", 100)}
    rows: dict[str, list[tuple[int, dict]]] = {k: [] for k in cases}
    for _ in range(args.runs):
        for name, (photo, limit) in cases.items():
            result = analyze_bytes(data[photo], DEFAULT_OPTIONS.merged({"max_faces": limit})).result
            rows[name].append((result["faces_analyzed"], result["timings_ms"]))

    def med(name: str, stage: str) -> float:
        return statistics.median(t.get(stage, 0.0) for _, t in rows[name])

    base = med("portrait 640x480", "total")
    print("| case | analysed | detect | attributes | annotate | total ms | x portrait |\n|---|---|---|---|---|---|---|")
    for name in cases:
        print(f"| {name} | {rows[name][0][0]} | " + " | ".join(f"{med(name, s):.0f}" for s in
              ("detect", "attributes", "annotate", "total")) + f" | {med(name, 'total') / base:.1f} |")
    for few, many in (("24 faces 12 MP, max_faces 10", "24 faces 12 MP, max_faces 24"),
                      ("100 faces 12 MP, max_faces 10", "100 faces 12 MP, max_faces 100")):
        extra = rows[many][0][0] - rows[few][0][0]
        per_face = (med(many, "attributes") - med(few, "attributes")) / extra
        print(f"{many}: {per_face:.1f} ms of attributes per face = {per_face / base:.2f}x the portrait's request; "
              f"annotate {med(many, 'annotate') - med(few, 'annotate'):+.0f} ms for {extra} more faces")


if __name__ == "__main__":
    main()
