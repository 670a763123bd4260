#!/usr/bin/env python3
"""Measure evaluation/mmod_check.py (dlib's MMOD as a second look at YuNet boxes) on people and animals.

    .venv/bin/python tools/mmod_check_study.py MMOD_DAT UTKFACE ANIMAL_FOLDERS... [--face 90]

MMOD_DAT is mmod_human_face_detector.dat from PyPI face-recognition-models 0.3.0's sdist (sha256s in
evaluation/mmod_check.py). Nothing is fitted, so every measurement is held out. Boxes come from
the YuNet detector at the service's MIN_CONFIDENCE (0.75) and auto detail, unless said:
- animals: every box at 0.6+ on the folders' photos (tools/face_check_study.PEOPLE's photos left out);
- real photos: the fixtures' and ../shared/photos' boxes at 0.6+, the photos scaled to 320-4000 px;
- UTKFace: each face padded by 60 px as `make eval` does: found before and after the check;
- groups: `make eval-groups`' own canvases (seed 0): recall per canvas and size, before and after;
- cost: ms per checked box (median), and the check's total on tests/unit/test_big_photos.py's 24-face
  12 MP group.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
for path in (ROOT, ROOT / "tools"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from evaluation import mmod_check  # noqa: E402

TIMES: list[float] = []


def kept(detector, image: np.ndarray, det) -> bool:
    """The check's answer for one Detection, timed when it runs MMOD."""
    if det.confidence >= mmod_check.CONFIDENT:
        return True
    start = time.perf_counter()
    answer = mmod_check.is_person(detector, image, tuple(det[:4]), det.confidence)
    TIMES.append((time.perf_counter() - start) * 1000)
    return answer


def boxes(image: np.ndarray, min_confidence: float = 0.6) -> list:
    from handler import runtime

    return runtime.get_models()["detector"].detect(np.ascontiguousarray(image), min_confidence)


def animals(detector, folders: list[Path]) -> None:
    from face_check_study import PEOPLE

    rows = [(path.name, d, kept(detector, image, d))
            for folder in folders for path in sorted(folder.iterdir()) if path.name not in PEOPLE
            for image in [cv2.imread(str(path), cv2.IMREAD_COLOR)] if image is not None
            for d in boxes(image)]
    for floor in (0.6, 0.75):
        passed = [name for name, d, ok in rows if ok and d.confidence >= floor]
        print(f"animal boxes at {floor}+: {sum(d.confidence >= floor for _, d, _ in rows)}, pass the check: "
              f"{len(passed)} {passed}")


def photos(detector) -> None:
    paths = [ROOT / "tests" / "fixtures" / n for n in ("astronaut.png", "camera.png", "group6.jpg")]
    paths += sorted((ROOT / ".." / "shared" / "photos").glob("*.jpg"))
    total, lost = 0, []
    for path in paths:
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        for side in (320, 640, 1280, 2000, 4000):
            scale = side / max(image.shape[:2])
            scaled = cv2.resize(image, None, fx=scale, fy=scale,
                                interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC)
            for d in boxes(scaled):
                total += 1
                if not kept(detector, scaled, d):
                    lost.append(f"{path.name}@{side} {d.confidence:.2f} {d.x2 - d.x1:.0f}px")
    print(f"real-photo boxes at 0.6+: {total}, dropped by the check: {len(lost)} {lost}")


def utkface(detector, data: Path) -> None:
    from evaluation.labels import read_labels
    from handler.service import DEFAULT_OPTIONS

    labels = read_labels(data)
    before = after = 0
    for label in labels:
        image = cv2.copyMakeBorder(cv2.imread(str(data / label.file)), 60, 60, 60, 60, cv2.BORDER_CONSTANT)
        found = boxes(image, DEFAULT_OPTIONS.min_confidence)
        before += bool(found)
        after += any(kept(detector, image, d) for d in found)
    print(f"UTKFace-dev found: {before}/{len(labels)} before, {after}/{len(labels)} after the check")


def groups(detector, data: Path) -> None:
    import group_recall as gr

    from handler import runtime
    from handler.pipeline import detect_faces
    from handler.service import DEFAULT_OPTIONS

    models = runtime.get_models()
    rng = np.random.default_rng(0)
    stream = gr.face_stream(data, rng)
    for name, (width, height) in gr.CANVASES.items():
        back = gr.background(width, height)
        for size in gr.SIZES:
            per_canvas = min(len(gr.grid((width, height), size, np.random.default_rng(0))), gr.MAX_FACES_PER_CANVAS)
            faces = before = after = 0
            for _ in range(math.ceil(gr.MIN_FACES / per_canvas)):
                canvas, truth = gr.paste_canvas(back, [next(stream) for _ in range(per_canvas)], size, rng)
                _, buf = cv2.imencode(".jpg", canvas, [cv2.IMWRITE_JPEG_QUALITY, 90])
                image = cv2.imdecode(buf, cv2.IMREAD_COLOR)
                found = detect_faces(image, models, DEFAULT_OPTIONS.min_confidence)
                checked = [f for f in found if kept(detector, image, _as_det(f))]
                faces += len(truth)
                before += len(gr.match(truth, [{"box": f.box} for f in found])[0])
                after += len(gr.match(truth, [{"box": f.box} for f in checked])[0])
            print(f"{name} {size:>3} px: {faces} faces, recall {100 * before / faces:.1f} % "
                  f"-> {100 * after / faces:.1f} %")


def _as_det(face):
    from handler.detection import Detection

    return Detection(*face.raw_box, face.detection_confidence, face.landmarks)


def big_group(detector) -> None:
    from unit.test_big_photos import group

    from handler.service import DEFAULT_OPTIONS

    canvas, _ = group(4000, 3000, 250, 24)
    found = boxes(canvas, DEFAULT_OPTIONS.min_confidence)
    start, count = time.perf_counter(), len(TIMES)
    survivors = sum(kept(detector, canvas, d) for d in found)
    print(f"24-face 12 MP group: {len(found)} boxes, {len(TIMES) - count} checked, {survivors} kept, "
          f"check {1000 * (time.perf_counter() - start):.0f} ms")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mmod", type=Path)
    parser.add_argument("utkface", type=Path)
    parser.add_argument("animals", type=Path, nargs="+")
    parser.add_argument("--face", type=int, default=mmod_check.FACE, help="the box's long side in MMOD's crop")
    args = parser.parse_args(argv)
    mmod_check.FACE = args.face
    sys.path.insert(0, str(ROOT / "tests"))
    detector = mmod_check.load_detector(args.mmod)
    animals(detector, args.animals)
    photos(detector)
    big_group(detector)
    print(f"ms per checked box so far: median {statistics.median(TIMES):.1f}, p90 {np.percentile(TIMES, 90):.1f} "
          f"({len(TIMES)} boxes)")
    utkface(detector, args.utkface)
    groups(detector, args.utkface)
    print(f"ms per checked box, all: median {statistics.median(TIMES):.1f} ({len(TIMES)} boxes)")


if __name__ == "__main__":
    main()
