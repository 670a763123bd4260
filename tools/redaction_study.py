"""Which detector threshold the redacted output uses: recall of small faces against false alarms.

    .venv/bin/python tools/redaction_study.py [--shared ../shared]

For each threshold: the share of UTKFace-dev faces found when pasted at 60, 100 and 150 px on a
1280x960 photo (scikit-image's coffee), the extra boxes on the shared one-person photos and on
face-free fixtures, boxes per padded UTKFace-dev face, and how many of those faces a re-run still finds
after redaction at that threshold. Prints one table; docs/redaction.md quotes it.
"""

from __future__ import annotations

import argparse
import csv
import random
import sys
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from handler import runtime  # noqa: E402
from handler.pipeline import detect_faces  # noqa: E402
from handler.redact import grow, pixelate  # noqa: E402

THRESHOLDS = (0.75, 0.5, 0.3, 0.25, 0.2, 0.15, 0.1)


def group_recall(faces: list[Path], size: int, models, rng: random.Random) -> list[float]:
    """Share of faces pasted in a grid at `size` px that some box at each threshold covers."""
    canvas = cv2.resize(cv2.imread(str(ROOT / "tests/fixtures/coffee.png")), (1280, 960))
    step, placed = int(size * 1.4), []
    for y in range(20, 960 - size, step):
        for x in range(20, 1280 - size, step):
            face = cv2.imread(str(rng.choice(faces)))
            canvas[y:y + size, x:x + size] = cv2.resize(face, (size, size), interpolation=cv2.INTER_AREA)
            placed.append((x + size / 2, y + size / 2))
    found = detect_faces(canvas, models, min(THRESHOLDS))

    def covered(cx: float, cy: float, t: float) -> bool:
        return any(f.detection_confidence >= t and abs(f.box["x"] + f.box["width"] / 2 - cx) < size / 2
                   and abs(f.box["y"] + f.box["height"] / 2 - cy) < size / 2 for f in found)

    return [sum(covered(cx, cy, t) for cx, cy in placed) / len(placed) for t in THRESHOLDS]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--shared", type=Path, default=ROOT.parent / "shared")
    parser.add_argument("--faces", type=int, default=200, help="padded UTKFace-dev faces to sample")
    args = parser.parse_args()
    models = runtime.get_models()
    rng = random.Random(1)
    utk = args.shared / "utkface-dev"
    faces = [utk / row["file"] for row in csv.DictReader((utk / "labels.csv").open())]
    rows = {f"group {size} px recall": group_recall(faces, size, models, rng) for size in (60, 100, 150)}

    def extra_boxes(paths: list[Path], expected: int) -> list[int]:
        images = [cv2.imread(str(p)) for p in paths]
        return [sum(max(len(detect_faces(i, models, t)) - expected, 0) for i in images) for t in THRESHOLDS]

    rows["extra boxes, 7 one-person photos"] = extra_boxes(sorted((args.shared / "photos").glob("*.jpg")), 1)
    rows["boxes on coffee + chelsea (no face)"] = extra_boxes(
        [ROOT / "tests/fixtures/coffee.png", ROOT / "tests/fixtures/chelsea.png"], 0)
    boxes, left = np.zeros(len(THRESHOLDS)), np.zeros(len(THRESHOLDS))
    sample = rng.sample(faces, args.faces)
    for path in sample:
        image = cv2.copyMakeBorder(cv2.imread(str(path)), 60, 60, 60, 60, cv2.BORDER_CONSTANT)
        for i, t in enumerate(THRESHOLDS):
            found = detect_faces(image, models, t)
            boxes[i] += len(found)
            redacted = pixelate(image, [grow(f.box, image.shape[1::-1]) for f in found])
            left[i] += bool(detect_faces(redacted, models, t))
    rows[f"boxes per face, {args.faces} padded UTKFace-dev"] = list(boxes / args.faces)
    rows["faces found again after redaction"] = [int(v) for v in left]

    print(f"{'threshold':<40}" + "".join(f"{t:>7}" for t in THRESHOLDS))
    for name, values in rows.items():
        print(f"{name:<40}" + "".join(f"{v:>7.3f}" if isinstance(v, float) else f"{v:>7}" for v in values))


if __name__ == "__main__":
    main()
