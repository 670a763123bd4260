#!/usr/bin/env python3
"""Fit the gender and age calibration on a labelled folder; write models/calibration.json and pin it.

    make calibrate DATA=../shared/utkface-dev
    = .venv/bin/python evaluation/calibrate.py ../shared/utkface-dev

Runs the pipeline's detection and attribute nets once over the folder (cached in
build/), then:
  1. cross-fits (K folds: every figure printed comes from folds that did not fit it)
     and prints ECE, accuracy per confidence band, the gender threshold table, age
     coverage and width per decade of true age, and per band of predicted age;
  2. fits the shipped parameters on every face, writes models/calibration.json with
     the data and command that produced them and the sha256 of the nets they fit, and
     pins the file's size and sha256 in models/manifest.json (checked at start-up).
Re-run it whenever a net, the chips or detection change: start-up refuses a
calibration fitted for other nets.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # importing handler loads the nets: done in main(), after MODEL_DIR is set
    from evaluation.face_dump import Dump

ROOT = Path(__file__).resolve().parent.parent
MODELS = ROOT / "models"

# Bands of predicted age for the interval: narrow where ages change fast, ~100 faces each on UTKFace-dev.
AGE_EDGES = (3.0, 7.0, 13.0, 20.0, 25.0, 30.0, 35.0, 40.0, 45.0, 50.0, 55.0, 60.0, 65.0, 70.0)
COVERAGE = 0.8
# Predicted younger than this: gender withheld (children's gender is near chance, docs/accuracy.md).
CHILD_BELOW_YEARS = 13.0
# An interval wider than this is age_uncertain (chosen from the per-band table this tool prints: with
# face-api.js's age the widest bands, predicted 40-55, are 24-25 years wide and their bucket is right < 50 %).
MAX_USEFUL_WIDTH = 24
FOLDS = 5


def uncalibrated_model_dir(into: Path) -> Path:
    """A model folder with the real weights and an identity calibration.

    Importing `handler` loads the nets and refuses a missing or stale calibration;
    fitting one must not need one, so the nets are loaded from this folder instead.
    """
    manifest = json.loads((MODELS / "manifest.json").read_text())
    for net in manifest["nets"].values():
        for f in net["files"].values():
            (into / f["name"]).symlink_to(MODELS / f["name"])
    identity = {"fitted_for": fitted_for(manifest), "gender": {"a": 1.0, "b": 0.0},
                "age": {"coverage": 0.0, "edges": [], "quantiles": [[0.0, 0.0]]},
                "rules": {"child_below_years": 0.0, "max_useful_width": 1000}}
    raw = json.dumps(identity).encode()
    (into / "calibration.json").write_bytes(raw)
    manifest["calibration"] = {"name": "calibration.json", "bytes": len(raw), "sha256": hashlib.sha256(raw).hexdigest()}
    (into / "manifest.json").write_text(json.dumps(manifest))
    return into


def pct(x: np.ndarray) -> str:
    return f"{100 * float(np.mean(x)):.1f}" if len(x) else "-"


def report(dump: Dump, seeds: int) -> None:
    """Cross-fitted tables (seed 0), with the spread over `seeds` fold assignments."""
    from evaluation import fitting
    from evaluation.evaluate import DECADES, decade
    from handler.readout import bucket_index

    found = dump.found
    ages, is_male = dump.ages[found], dump.is_male[found]
    raw = dump.p_male[found]
    years = dump.years[found]
    runs = [fitting.cross_fit(raw, is_male, years, ages, AGE_EDGES, COVERAGE, FOLDS, seed) for seed in range(seeds)]
    p_male, low, high = runs[0]
    conf = np.maximum(p_male, 1 - p_male)
    correct = (p_male >= 0.5) == is_male
    adult = years >= CHILD_BELOW_YEARS
    eces = [fitting.gender_ece(r[0], is_male) for r in runs]
    print(f"\n{found.sum()} faces found of {len(found)}; {FOLDS}-fold cross-fitting, {seeds} fold seeds")
    print(f"gender ECE (10 bins): raw net {fitting.gender_ece(raw, is_male):.4f}, "
          f"calibrated {eces[0]:.4f} (seeds: {min(eces):.4f}-{max(eces):.4f})")
    print("\n| calibrated confidence | faces | correct % | mean confidence |\n|---|---|---|---|")
    for lo, hi in [(0.5, 0.6), (0.6, 0.7), (0.7, 0.8), (0.8, 0.9), (0.9, 0.95), (0.95, 1.01)]:
        inside = (conf >= lo) & (conf < hi)
        print(f"| {lo:.2f}-{min(hi, 1):.2f} | {inside.sum()} | {pct(correct[inside])} | "
              f"{conf[inside].mean() if inside.any() else float('nan'):.3f} |")
    print(f"\nthreshold on calibrated confidence, faces predicted >= {CHILD_BELOW_YEARS:g} y ({adult.sum()}):")
    print("| threshold | unknown % | decided correct % |\n|---|---|---|")
    for t in (0.5, 0.6, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95):
        decided = adult & (conf >= t)
        print(f"| {t:.2f} | {100 * (1 - decided.sum() / adult.sum()):.1f} | {pct(correct[decided])} |")
    child = ~adult
    print(f"faces predicted < {CHILD_BELOW_YEARS:g} y: {child.sum()}, argmax gender correct {pct(correct[child])} %")
    covered = (ages >= low) & (ages <= high)
    width = high - low
    dec = np.array([decade(a) for a in ages])
    seed_cov = [float(np.mean((ages >= r[1]) & (ages <= r[2]))) for r in runs]
    print(f"\nage interval coverage {pct(covered)} % (seeds {100 * min(seed_cov):.1f}-{100 * max(seed_cov):.1f}), "
          f"median width {np.median(width):.0f} y")
    print("| true age | faces | covered % | seeds min-max | median width |\n|---|---|---|---|---|")
    for name in DECADES:
        inside = dec == name
        per_seed = [100 * float(np.mean(((ages >= r[1]) & (ages <= r[2]))[inside])) for r in runs]
        print(f"| {name} | {inside.sum()} | {pct(covered[inside])} | {min(per_seed):.1f}-{max(per_seed):.1f} | "
              f"{np.median(width[inside]):.0f} |")
    print("\nby band of predicted age (what age_uncertain keys on):")
    print("| predicted | faces | median width | covered % | MAE | bucket % |\n|---|---|---|---|---|---|")
    band = np.searchsorted(AGE_EDGES, years, side="right")
    bucket_ok = np.array([bucket_index(y) == bucket_index(a) for y, a in zip(years, ages)])
    edges = (0, *AGE_EDGES, 81)
    for b in range(len(AGE_EDGES) + 1):
        inside = band == b
        print(f"| {edges[b]:g}-{edges[b + 1]:g} | {inside.sum()} | {np.median(width[inside]):.0f} | "
              f"{pct(covered[inside])} | {np.abs(years - ages)[inside].mean():.2f} | {pct(bucket_ok[inside])} |")
    wide = width > MAX_USEFUL_WIDTH
    for name, inside in ((f"wider than {MAX_USEFUL_WIDTH} y (age_uncertain)", wide),
                         (f"{CHILD_BELOW_YEARS:g}+ y, at most {MAX_USEFUL_WIDTH} y wide", ~wide & adult)):
        within5 = np.abs(np.floor(years + 0.5) - ages) <= 5
        print(f"{name}: {inside.sum()} faces, MAE {np.abs(years - ages)[inside].mean():.2f}, "
              f"within ±5 y {pct(within5[inside])} %, bucket {pct(bucket_ok[inside])} %")


def fitted_for(manifest: dict) -> dict:
    """The sha256 of each file of every net in the manifest (start-up checks those calibration.FITTED_NETS names)."""
    return {key: {role: f["sha256"] for role, f in net["files"].items()} for key, net in manifest["nets"].items()}


def write(dump: Dump, folder: Path, model_dir: Path) -> Path:
    """Fit on every found face; write calibration.json and pin it in the manifest."""
    from evaluation import fitting
    from evaluation.evaluate import decade
    from handler import calibration

    found = dump.found
    years = dump.years[found]
    gender = fitting.fit_platt(dump.p_male[found], dump.is_male[found])
    age = fitting.fit_intervals(years, dump.ages[found], AGE_EDGES, COVERAGE)
    manifest_path = model_dir / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    labels = [lab for lab, f in zip(dump.labels, found) if f]
    races = Counter(lab.race or "unlabelled" for lab in labels)
    data = {
        "about": "Fitted by evaluation/calibrate.py; do not edit by hand (the manifest pins this file's sha256).",
        "command": f"make calibrate DATA={folder if not folder.is_absolute() else '.../' + folder.name}",
        "data": {
            "folder": folder.name,
            "labels_sha256": hashlib.sha256((folder / "labels.csv").read_bytes()).hexdigest(),
            "faces": len(labels),
            "make_up": {"gender": dict(Counter(lab.gender for lab in labels)),
                        "decade": dict(Counter(decade(lab.age) for lab in labels)), "race": dict(races)},
            "note": "UTKFace-format crops, aligned, frontal, well lit; holds for faces like these, "
                    "not for every population.",
        },
        "fitted_for": fitted_for(manifest),
        "gender": {"method": "Platt scaling of the net's log-odds of male", "a": round(gender.a, 6),
                   "b": round(gender.b, 6)},
        "age": {"method": "split-conformal residual quantiles per band of predicted age",
                "coverage": COVERAGE, "edges": list(AGE_EDGES),
                "quantiles": [[round(lo, 4), round(hi, 4)] for lo, hi in age.quantiles]},
        "rules": {"child_below_years": CHILD_BELOW_YEARS, "max_useful_width": MAX_USEFUL_WIDTH},
    }
    path = model_dir / calibration.FILE_NAME
    raw = (json.dumps(data, indent=1) + "\n").encode()
    path.write_bytes(raw)
    pin = json.dumps({"name": calibration.FILE_NAME, "bytes": len(raw), "sha256": hashlib.sha256(raw).hexdigest()})
    # Edit the one line, leaving the rest of the manifest's hand-kept layout alone.
    text = manifest_path.read_text()
    line = re.compile(r'^ "calibration": \{.*\},$', re.M)
    if line.search(text):
        text = line.sub(lambda _: f' "calibration": {pin},', text)
    else:
        text = text.replace('\n "packages": {', f'\n "calibration": {pin},\n "packages": {{', 1)
    manifest_path.write_text(text)
    calibration.load(model_dir)  # the check start-up will run
    return path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data", type=Path, help="UTKFace-format folder (labels.csv with file,age,gender[,race])")
    ap.add_argument("--seeds", type=int, default=5, help="fold assignments to report the spread over")
    ap.add_argument("--report-only", action="store_true", help="print the cross-fitted tables, write nothing")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["MODEL_DIR"] = str(uncalibrated_model_dir(Path(tmp)))
        sys.path.insert(0, str(ROOT))
        from evaluation import face_dump

        dump = face_dump.load(args.data)
    report(dump, args.seeds)
    if not args.report_only:
        path = write(dump, args.data, MODELS)
        print(f"\nwrote {path.relative_to(ROOT)} and pinned it in models/manifest.json")


if __name__ == "__main__":
    main()
