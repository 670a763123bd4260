#!/usr/bin/env python3
"""Group recall: labelled faces pasted at several sizes onto a face-free photo, through the real service.

    .venv/bin/python evaluation/group_recall.py DATA [--detail auto] [--min-confidence 0.75] [--json out.json]
    make eval-groups DATA=../shared/utkface-dev

DATA is a UTKFace-format folder (`labels.csv` with file,age,gender). Each face
is pasted as a square of 60, 100, 150, 250 or 400 px (its 200 px UTKFace crop
resized, so the face itself is about 60 % of that) on a grid with random
jitter, onto scikit-image's coffee.png (face-free) upscaled to a 12 MP
(4000x3000) or ~1 MP (1280x960) canvas, encoded as a JPEG and sent through
`service.analyze_bytes` like a user's upload. A detection matches a pasted face
when its centre lies in the square and its width is 0.3-1.3x the square's.
Printed per canvas and size: faces, recall, false positives (detections
matching no face), gender accuracy (argmax) on the faces found, and the same
faces' gender accuracy when each is analysed alone (padded, as `make eval`
does), so the group figure compares with the single-face one on equal faces.
Face-free photos (FACE_FREE: coffee, and cats and dogs, at several sizes) are checked for any face.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import statistics
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

FIXTURES = ROOT / "tests" / "fixtures"
SIZES = (60, 100, 150, 250, 400)
CANVASES = {"12 MP": (4000, 3000), "1 MP": (1280, 960)}
# Every (canvas, size) row holds at least this many faces (several canvases when few fit in one).
MIN_FACES = 48
MAX_FACES_PER_CANVAS = 200
# Photos without a person: coffee, and the animals of tests/fetch_fixtures.py (cats, dogs, a Tasmanian devil).
FACE_FREE = ("coffee.png", "chelsea.png", "bear.jpg", "black_cat.jpg", "puppies.jpg", "puppy.jpg")


@dataclass(frozen=True)
class Pasted:
    """One pasted face: its square on the canvas and its label."""

    x: int
    y: int
    size: int
    file: str
    gender: str

    def matches(self, box: dict) -> bool:
        cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
        return (self.x <= cx < self.x + self.size and self.y <= cy < self.y + self.size
                and 0.3 * self.size <= box["width"] <= 1.3 * self.size)


def background(width: int, height: int, name: str = "coffee.png") -> np.ndarray:
    """A face-free fixture photo, centre-cropped to the canvas's aspect ratio and resized to it."""
    image = cv2.imread(str(FIXTURES / name), cv2.IMREAD_COLOR)
    if image is None:
        raise SystemExit(f"{FIXTURES / name} is missing: run `make fixtures`")
    h, w = image.shape[:2]
    if w / h > width / height:
        cw = round(h * width / height)
        image = image[:, (w - cw) // 2:(w - cw) // 2 + cw]
    else:
        ch = round(w * height / width)
        image = image[(h - ch) // 2:(h - ch) // 2 + ch]
    return cv2.resize(image, (width, height), interpolation=cv2.INTER_CUBIC)


def grid(canvas: tuple[int, int], size: int, rng: np.random.Generator) -> list[tuple[int, int]]:
    """Top-left corners of face squares: cells 1.5x the face, jittered inside their cell, at most
    MAX_FACES_PER_CANVAS of them (a random subset when more fit)."""
    width, height = canvas
    cell = int(size * 1.5)
    cols, rows = width // cell, height // cell
    ox, oy = (width - cols * cell) // 2, (height - rows * cell) // 2
    slack = cell - size + 1
    spots = [(ox + c * cell + int(rng.integers(0, slack)), oy + r * cell + int(rng.integers(0, slack)))
             for r in range(rows) for c in range(cols)]
    if len(spots) > MAX_FACES_PER_CANVAS:
        keep = sorted(rng.choice(len(spots), MAX_FACES_PER_CANVAS, replace=False))
        spots = [spots[i] for i in keep]
    return spots


def paste_canvas(back: np.ndarray, faces: list[tuple[np.ndarray, str, str]], size: int,
                 rng: np.random.Generator) -> tuple[np.ndarray, list[Pasted]]:
    """Paste (image, file, gender) faces at `size` px onto a copy of `back`; returns the canvas and truth."""
    canvas = back.copy()
    spots = grid((back.shape[1], back.shape[0]), size, rng)[:len(faces)]
    truth = []
    for (x, y), (face, file, gender) in zip(spots, faces):
        interp = cv2.INTER_AREA if size < face.shape[0] else cv2.INTER_CUBIC
        canvas[y:y + size, x:x + size] = cv2.resize(face, (size, size), interpolation=interp)
        truth.append(Pasted(x, y, size, file, gender))
    return canvas, truth


def face_stream(data: Path, rng: np.random.Generator) -> Iterator[tuple[np.ndarray, str, str]]:
    """Labelled faces in a random order, cycling when the folder runs out."""
    from evaluation.labels import read_labels

    labels = read_labels(data)
    while True:
        for i in rng.permutation(len(labels)):
            label = labels[i]
            image = cv2.imread(str(data / label.file), cv2.IMREAD_COLOR)
            if image is None:
                raise SystemExit(f"cannot read image {data / label.file}")
            yield image, label.file, label.gender


def match(truth: list[Pasted], faces: list[dict]) -> tuple[dict[int, dict], int]:
    """Greedy one-to-one match of detections to pasted faces: ({truth index: face}, false positives)."""
    found: dict[int, dict] = {}
    unmatched = 0
    for face in faces:
        hit = next((i for i, t in enumerate(truth) if i not in found and t.matches(face["box"])), None)
        if hit is None:
            unmatched += 1
        else:
            found[hit] = face
    return found, unmatched


def run(data: Path, options, seed: int = 0) -> dict:
    """Every (canvas, size) row, the face-free checks and the single-face gender of the faces used."""
    from handler.service import analyze_bytes

    rng = np.random.default_rng(seed)
    stream = face_stream(data, rng)
    rows, gender_alone = [], {}
    for canvas_name, (width, height) in CANVASES.items():
        back = background(width, height)
        for size in SIZES:
            per_canvas = min(len(grid((width, height), size, np.random.default_rng(0))), MAX_FACES_PER_CANVAS)
            if per_canvas == 0:
                continue
            canvases = math.ceil(MIN_FACES / per_canvas)
            row = {"canvas": canvas_name, "size": size, "faces": 0, "found": 0, "false_positives": 0,
                   "gender_correct": 0, "gender_alone_correct": 0, "ms": []}
            for _ in range(canvases):
                faces = [next(stream) for _ in range(per_canvas)]
                image, truth = paste_canvas(back, faces, size, rng)
                _, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 90])
                t0 = time.perf_counter()
                result = analyze_bytes(buf.tobytes(), options).result
                row["ms"].append((time.perf_counter() - t0) * 1000)
                found, false_positives = match(truth, result["faces"])
                row["faces"] += len(truth)
                row["found"] += len(found)
                row["false_positives"] += false_positives
                for i, face in found.items():
                    t = truth[i]
                    if t.file not in gender_alone:
                        gender_alone[t.file] = _alone_gender(data / t.file, options)
                    row["gender_correct"] += face["gender"] is not None and face["gender"]["value"] == t.gender
                    row["gender_alone_correct"] += gender_alone[t.file] == t.gender
            row["ms"] = statistics.median(row["ms"])
            rows.append(row)
            _print_row(row)
    return {"rows": rows, "face_free": face_free(options)}


def _alone_gender(path: Path, options) -> str | None:
    """Argmax gender of the face analysed alone, padded by 60 px as `make eval` does."""
    from handler import runtime
    from handler.pipeline import analyze

    image = cv2.copyMakeBorder(cv2.imread(str(path), cv2.IMREAD_COLOR), 60, 60, 60, 60, cv2.BORDER_CONSTANT)
    faces = analyze(image, runtime.get_models(), options)
    return faces[0]["gender"]["value"] if faces else None


def face_free(options) -> list[dict]:
    """Faces reported on photos without a face: the originals and upscaled 1 MP and 12 MP copies."""
    from handler.service import analyze_bytes

    out = []
    for name in FACE_FREE:
        original = cv2.imread(str(FIXTURES / name), cv2.IMREAD_COLOR)
        for label, image in (("original", original), ("1 MP", background(1280, 960, name)),
                             ("12 MP", background(4000, 3000, name))):
            _, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 90])
            faces = analyze_bytes(buf.tobytes(), options).result["faces"]
            out.append({"photo": name, "size": label, "faces": len(faces),
                        "max_confidence": max((f["detection_confidence"] for f in faces), default=None)})
    return out


def _pct(a: int, b: int) -> str:
    return f"{100 * a / b:.1f}" if b else "-"


def _print_row(row: dict) -> None:
    print(f"  {row['canvas']:>5} {row['size']:>4} px: {row['found']}/{row['faces']} found, "
          f"{row['false_positives']} false positives, {row['ms']:.0f} ms/canvas", file=sys.stderr)


def format_tables(report: dict) -> str:
    """Markdown: recall by canvas and size, then the face-free photos."""
    lines = ["| canvas | face px | faces | recall | false positives | gender in group | same faces alone "
             "| ms/canvas |", "|---|---|---|---|---|---|---|---|"]
    for r in report["rows"]:
        lines.append(f"| {r['canvas']} | {r['size']} | {r['faces']} | {_pct(r['found'], r['faces'])} % "
                     f"| {r['false_positives']} | {_pct(r['gender_correct'], r['found'])} % "
                     f"| {_pct(r['gender_alone_correct'], r['found'])} % | {r['ms']:.0f} |")
    found = sum(r["found"] for r in report["rows"])
    lines.append(f"| all | | {sum(r['faces'] for r in report['rows'])} "
                 f"| {_pct(found, sum(r['faces'] for r in report['rows']))} % "
                 f"| {sum(r['false_positives'] for r in report['rows'])} "
                 f"| {_pct(sum(r['gender_correct'] for r in report['rows']), found)} % "
                 f"| {_pct(sum(r['gender_alone_correct'] for r in report['rows']), found)} % | |")
    lines += ["", "| face-free photo | size | faces reported | highest confidence |", "|---|---|---|---|"]
    for r in report["face_free"]:
        conf = "-" if r["max_confidence"] is None else f"{r['max_confidence']:.2f}"
        lines.append(f"| {r['photo']} | {r['size']} | {r['faces']} | {conf} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("data", type=Path, help="UTKFace-format folder (labels.csv + images)")
    ap.add_argument("--min-confidence", type=float, default=None, help="detector threshold (default: the setting)")
    ap.add_argument("--detail", default=None, help="the request's `detail` option (default: the service default)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", type=Path, default=None, help="also write the rows here")
    args = ap.parse_args(argv)

    from handler.service import DEFAULT_OPTIONS

    # Every face analysed, gender by argmax (the threshold would hide errors as "unknown").
    changes = {"max_faces": 10_000, "min_gender_confidence": 0.0, "annotate": False}
    if args.min_confidence is not None:
        changes["min_confidence"] = args.min_confidence
    if args.detail is not None:
        changes["detail"] = args.detail
    options = dataclasses.replace(DEFAULT_OPTIONS, **changes)
    report = run(args.data, options, args.seed)
    print(f"{args.data}: faces pasted on coffee.png, min_confidence {options.min_confidence}"
          + (f", detail {args.detail}" if args.detail else ""))
    print(format_tables(report))
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))
    return report


if __name__ == "__main__":
    main()
