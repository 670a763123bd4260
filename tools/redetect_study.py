#!/usr/bin/env python3
"""Does YuNet's own second opinion at a standard scale tell a person's face from an animal's? (issue 24, item 4)

    git show a690b2a:tools/pet_features_study.py > tools/pet_features_study.py   # the data lists and sets
    .venv/bin/python tools/redetect_study.py ../shared/utkface-dev --fit-animals FIT... --held-out HELD...
    .venv/bin/python tools/redetect_study.py ../shared/utkface-dev --cost PHOTO...

Every YuNet box at 0.5 or more (detail auto) is cut out again: a square crop twice the box's long side, centred
on it, zero-padded past the photo's edge, resized so the box is S px (64, 96, 128), and YuNet
(`models["detector"].forward`, floor 0.01) re-run on it and on its mirror. Per size: the best re-detected
score whose centre lies in the original box, its mirror's, and each one's landmark distance to the original
five points (mean, over S). Scores tried: each of these, their min and mean, over one size or all. The
threshold is the lowest score of the fit faces (UTKFace-dev's even rank, every real photo's face at six sizes
and six degradations, people on the fit folders' pet photos): no fitted face lost. Reported, held out: the
held-out folders' animals and people, UTKFace's odd rank, `make eval-groups`' own canvases (seed 0), the
fixtures' animals at six sizes. `--plain` leaves the degraded real photos out of the threshold. `--cost`
times analyze() with and without the re-detection of every box (crop and mirror), alternated, medians.
Animal photos are never committed: see docs/decisions.md, "Animals' faces".
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import pet_features_study as pfs

SIZES = (64, 96, 128)
SWAP = [1, 0, 2, 4, 3]  # mirrored points: the eyes and the mouth corners change sides


class SecondOpinion(pfs.Features):
    """pet_features_study's sets, each box's row holding the re-detection's features instead."""

    def crop(self, image: np.ndarray, box: tuple, size: int) -> tuple[np.ndarray, np.ndarray]:
        """The 2x crop around the box, the box `size` px; and the photo -> crop affine map."""
        x1, y1, x2, y2 = box[:4]
        side, cx, cy = max(x2 - x1, y2 - y1), (x1 + x2) / 2, (y1 + y2) / 2
        k = size / side
        if k >= 1:
            m = np.array([[k, 0, size - k * cx], [0, k, size - k * cy]], np.float32)
            return cv2.warpAffine(image, m, (2 * size, 2 * size), flags=cv2.INTER_LINEAR), m
        h, w = image.shape[:2]
        a, b, n = int(np.floor(cx - side)), int(np.floor(cy - side)), int(np.ceil(2 * side)) + 1
        sub = cv2.copyMakeBorder(image[max(0, b):min(h, b + n), max(0, a):min(w, a + n)], max(0, -b),
                                 max(0, b + n - h), max(0, -a), max(0, a + n - w), cv2.BORDER_CONSTANT, value=0)
        k = 2 * size / n
        return cv2.resize(sub, (2 * size, 2 * size), interpolation=cv2.INTER_AREA), \
            np.array([[k, 0, -k * a], [0, k, -k * b]], np.float32)

    def second(self, image: np.ndarray, box: tuple, size: int) -> list[float]:
        """[score, landmark distance, mirror's score, mirror's landmark distance] (0 and 9.9 when none)."""
        crop, m = self.crop(image, box, size)
        points = np.array(box[5]) @ m[:, :2].T + m[:, 2]
        (x1, y1), (x2, y2) = m @ [box[0], box[1], 1], m @ [box[2], box[3], 1]
        out = []
        for mirror in (False, True):
            best, distance = 0.0, 9.9
            for d in self.models["detector"].forward(cv2.flip(crop, 1) if mirror else crop, 0.01):
                cx, cy = (d.x1 + d.x2) / 2, (d.y1 + d.y2) / 2
                cx = 2 * size - cx if mirror else cx
                if x1 <= cx <= x2 and y1 <= cy <= y2 and d.confidence > best:
                    p = np.array(d.landmarks)
                    if mirror:
                        p = p[SWAP]
                        p[:, 0] = 2 * size - p[:, 0]
                    best, distance = d.confidence, float(np.linalg.norm(p - points, axis=1).mean() / size)
            out += [best, distance]
        return out

    def rows(self, image: np.ndarray, boxes: list) -> list:
        image = np.ascontiguousarray(image)
        return [(np.array([v for s in SIZES for v in self.second(image, box, s)]), float(box[4]), tuple(box[:4]))
                for box in boxes]


def scores(rows: list) -> dict[str, np.ndarray]:
    x = np.array([r[0] for r in rows]).reshape(len(rows), 4 * len(SIZES))
    out = {}
    for i, s in enumerate(SIZES):
        score, far, mirror, mirror_far = x[:, 4 * i:4 * i + 4].T
        out |= {f"{s} px": score, f"{s} px mirror": mirror, f"{s} px min": np.minimum(score, mirror),
                f"{s} px mean": (score + mirror) / 2, f"{s} px -landmark distance": -np.maximum(far, mirror_far)}
    out["all sizes min"] = np.min([out[f"{s} px min"] for s in SIZES], 0)
    out["all sizes mean"] = np.mean([out[f"{s} px mean"] for s in SIZES], 0)
    return out


def cost(f: SecondOpinion, paths: list[str], rounds: int = 60) -> None:
    from handler.pipeline import analyze
    from handler.service import DEFAULT_OPTIONS

    for path in paths:
        image = cv2.imread(path)
        boxes = f.boxes(image)
        for size in SIZES:
            times: dict[bool, list[float]] = {False: [], True: []}
            for i in range(rounds):
                for check in ((False, True) if i % 2 else (True, False)):
                    t0 = time.perf_counter()
                    analyze(image, f.models, DEFAULT_OPTIONS)
                    for box in boxes if check else ():
                        f.second(image, box, size)
                    times[check].append(time.perf_counter() - t0)
            extra = np.median(np.subtract(times[True], times[False])) * 1000
            print(f"{path} {image.shape[1]}x{image.shape[0]}, {len(boxes)} boxes, {size} px: analyze "
                  f"{np.median(times[False]) * 1000:.1f} ms, + {extra:.2f} ms ({extra / len(boxes):.2f} ms a box, "
                  f"crop and mirror), paired medians of {rounds}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("utkface", type=Path)
    parser.add_argument("--fit-animals", type=Path, nargs="+", default=[])
    parser.add_argument("--held-out", type=Path, nargs="+", default=[])
    parser.add_argument("--plain", action="store_true", help="no degraded real photos in the threshold")
    parser.add_argument("--cost", nargs="+", metavar="PHOTO")
    args = parser.parse_args(argv)
    f = SecondOpinion()
    cv2.setNumThreads(1)
    if args.cost:
        return cost(f, args.cost)
    if args.plain:
        pfs.DEGRADE = {}
    utk, groups0, real = pfs.utk(f, args.utkface), pfs.groups(f, args.utkface, 0), pfs.real_faces(f)
    fit_animals, fit_people = pfs.animal_photos(f, args.fit_animals)
    held = [pfs.animal_photos(f, [folder]) for folder in args.held_out]
    held_animals = [r for animals, _ in held for r in animals]
    held_people = [r for _, people in held for r in people]
    even = set(sorted(utk)[::2])
    fit_faces = [r for n in even for r in utk[n]] + [r for rs in real.values() for r in rs] + fit_people
    held_faces = {"UTKFace odd rank": [r for n, rs in utk.items() if n not in even for r in rs],
                  "eval-groups canvases": [r for rs in groups0.values() for r in rs],
                  "people on held-out pet photos": held_people}
    fixtures = pfs.fixture_animals(f)
    print(f"fit: {len(fit_faces)} faces, {len(fit_animals)} animal boxes; held out: {len(held_animals)} animal "
          f"boxes, " + ", ".join(f"{len(v)} {k}" for k, v in held_faces.items()))
    for key, fitted in scores(fit_faces).items():
        threshold = fitted.min()

        def removed(rows: list, floor: float = 0.0, key: str = key, threshold: float = threshold) -> str:
            sure = np.array([r[1] >= floor for r in rows], bool)
            return f"{int((scores(rows)[key][sure] < threshold).sum())}/{int(sure.sum())}" if rows else "0/0"

        print(f"{key:27s} threshold {threshold:.3f}: animals removed, fit {removed(fit_animals, 0.75)} at 0.75+, "
              f"held out {removed(held_animals)} ({removed(held_animals, 0.75)} at 0.75+), fixtures "
              f"{removed(fixtures)}; faces lost: " + ", ".join(f"{k} {removed(v)}" for k, v in held_faces.items()))


if __name__ == "__main__":
    main()
