#!/usr/bin/env python3
"""Fit the gender and age calibration on labelled folders, pooled; write models/calibration.json and pin it.

    make calibrate DATA="../shared/utkface-dev build/fairface"
    = .venv/bin/python evaluation/calibrate.py ../shared/utkface-dev build/fairface

Runs the pipeline's detection and attribute nets once over each folder (cached in
build/), pools their faces, then:
  1. cross-fits (K folds over the pool: every figure printed comes from folds that did
     not fit it) and prints ECE, accuracy per confidence band, the gender threshold table,
     age coverage and width per band of predicted age, and per population (each folder,
     each of its age bands and race groups): coverage, MAE, width, age_uncertain share,
     gender decided share and accuracy; then the same with each population held out
     (each folder x race group scored by parameters fitted on every other one);
  2. fits the shipped parameters on every face, writes models/calibration.json with
     the data and command that produced them and the sha256 of the nets they fit, and
     pins the file's size and sha256 in models/manifest.json (checked at start-up).
A folder labelled with age groups (`age_low,age_high`, e.g. FairFace's) counts an interval
as covering when it overlaps the group, and fits with the same rule (fitting.conformal_quantiles).
Re-run it whenever a net, the chips or detection change: start-up refuses a
calibration fitted for other nets.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import math
import os
import re
import sys
import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # importing handler loads the nets: done in main(), after MODEL_DIR is set
    from evaluation.face_dump import Dump

ROOT = Path(__file__).resolve().parent.parent
MODELS = ROOT / "models"

# Bands of predicted age for the interval: narrow where ages change fast, ~100 faces each on UTKFace-dev;
# 75+ apart from 70-75 because the net reads the oldest younger (their upper quantile is the widest).
AGE_EDGES = (3.0, 7.0, 13.0, 20.0, 25.0, 30.0, 35.0, 40.0, 45.0, 50.0, 55.0, 60.0, 65.0, 70.0, 75.0)
COVERAGE = 0.8
# The age net's mirror spread (years between its readings of the chip and of its mirror) that doubles
# a face's interval. Larger spreads went with larger errors on both sets, and more so on FairFace.
# Chosen as the divisor that evens coverage best across quartiles of the spread (the worst folder's
# range between its quartiles, mean of 5 fold seeds: 7.4 points at 12; 9.1 at 8, 9.2 at 16, 13.1 with
# a fixed width); docs/accuracy.md, "Numbers per population".
SPREAD_YEARS = 12.0
# Predicted younger than this: gender withheld (children's gender is near chance, docs/accuracy.md).
CHILD_BELOW_YEARS = 13.0
# An interval wider than this is age_uncertain (chosen from the per-band table this tool prints: with
# face-api.js's age the widest bands, predicted 40-55, are 24-25 years wide and their bucket is right < 50 %).
MAX_USEFUL_WIDTH = 24
FOLDS = 5
MISREAD_YEARS = 4.7  # the stress test: a decade read this much younger (an independent set's worst band)
ADULT_FROM = 13  # decided share and accuracy count faces whose label is at least this old


@dataclass(frozen=True)
class Pool:
    """The found faces of every folder, side by side (one entry per face)."""

    source: np.ndarray      # folder name
    race: np.ndarray        # race group ('' where unlabelled)
    low: np.ndarray         # exact age, or the low end of its age group
    high: np.ndarray        # = low, or the high end of its age group
    is_male: np.ndarray
    p_male: np.ndarray      # uncalibrated
    years: np.ndarray
    spread: np.ndarray      # mirror spread, years
    spread_years: float = SPREAD_YEARS

    @property
    def band(self) -> np.ndarray:
        """The label's age band: its decade (exact ages) or its group (ranges)."""
        from evaluation.evaluate import age_band

        return np.array([age_band(lo, hi) for lo, hi in zip(self.low, self.high)])

    def cross_fit(self, seed: int = 0, held_out: np.ndarray | None = None,
                  misread: np.ndarray | None = None) -> tuple[np.ndarray, ...]:
        from evaluation import fitting

        return fitting.cross_fit(self.p_male, self.is_male, self.years, self.low, AGE_EDGES, COVERAGE, FOLDS, seed,
                                 ages_high=self.high, spread=self.spread, spread_years=self.spread_years,
                                 held_out=held_out, misread=misread)


def pool(dumps: dict[str, Dump]) -> Pool:
    """Every folder's found faces, in folder order."""
    rows = [(name, lab, d.p_male[i], d.years[i], d.mirror_spread[i]) for name, d in dumps.items()
            for i, lab in enumerate(d.labels) if d.found[i]]
    return Pool(np.array([r[0] for r in rows]), np.array([r[1].race or "" for r in rows]),
                np.array([r[1].low for r in rows]), np.array([r[1].high for r in rows]),
                np.array([r[1].gender == "male" for r in rows]), np.array([r[2] for r in rows]),
                np.array([r[3] for r in rows]), np.array([r[4] for r in rows]))


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


def population_rows(pool: Pool, p_male: np.ndarray, low: np.ndarray, high: np.ndarray,
                    min_confidence: float) -> list[tuple[str, int, str, str, str, str, str, str]]:
    """Per folder, per age band and per race group: faces, coverage, MAE, width, age_uncertain, decided, right."""
    from evaluation.evaluate import band_start

    covered = (low <= pool.high) & (high >= pool.low)
    error = np.maximum(0, np.maximum(pool.low - pool.years, pool.years - pool.high))  # 0 inside a group
    width = high - low
    conf = np.maximum(p_male, 1 - p_male)
    decided = (conf >= min_confidence) & (pool.years >= CHILD_BELOW_YEARS)
    right = (p_male >= 0.5) == pool.is_male
    adult = pool.low >= ADULT_FROM
    band = pool.band
    rows = []
    for source in dict.fromkeys(pool.source):
        mine = pool.source == source
        groups = [("all", mine)]
        groups += [(b, mine & (band == b)) for b in sorted(set(band[mine]), key=band_start)]
        groups += [(r, mine & (pool.race == r)) for r in sorted(set(pool.race[mine]) - {""})]
        for name, inside in groups:
            d = inside & adult & decided
            rows.append((f"{source} {name}", int(inside.sum()), pct(covered[inside]), f"{error[inside].mean():.2f}",
                         f"{np.median(width[inside]):.0f}", pct(width[inside] > MAX_USEFUL_WIDTH),
                         pct(decided[inside & adult]) if (inside & adult).any() else "-", pct(right[d])))
    return rows


def misread_coverage(pool: Pool) -> str:
    """Per decade of exact ages: coverage when the net reads that decade MISREAD_YEARS younger than it did."""
    from evaluation.evaluate import band_start

    exact, label_band = pool.low == pool.high, pool.band
    cells = []
    for name in sorted(set(label_band[exact]), key=band_start):
        inside = exact & (label_band == name)
        _, low, high = pool.cross_fit(misread=np.where(inside, -MISREAD_YEARS, 0.0))
        cells.append(f"{name}: {pct(((low <= pool.high) & (high >= pool.low))[inside])}")
    return ", ".join(cells)


def report(pool: Pool, seeds: int) -> None:
    """Cross-fitted tables (seed 0), with the spread over `seeds` fold assignments, then populations held out."""
    from evaluation import fitting
    from handler.config import SETTINGS
    from handler.readout import bucket_index

    runs = [pool.cross_fit(seed) for seed in range(seeds)]
    p_male, low, high = runs[0]
    is_male, years, raw = pool.is_male, pool.years, pool.p_male
    conf = np.maximum(p_male, 1 - p_male)
    correct = (p_male >= 0.5) == is_male
    adult = years >= CHILD_BELOW_YEARS
    eces = [fitting.gender_ece(r[0], is_male) for r in runs]
    print(f"\n{len(years)} faces found in {', '.join(dict.fromkeys(pool.source))}; {FOLDS}-fold cross-fitting "
          f"over the pool, {seeds} fold seeds")
    print(f"gender ECE (10 bins): raw net {fitting.gender_ece(raw, is_male):.4f}, "
          f"calibrated {eces[0]:.4f} (seeds: {min(eces):.4f}-{max(eces):.4f})")
    for source in dict.fromkeys(pool.source):
        mine = pool.source == source
        print(f"  {source}: calibrated ECE {fitting.gender_ece(p_male[mine], is_male[mine]):.4f}")
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

    covered = (low <= pool.high) & (high >= pool.low)
    width = high - low
    seed_cov = [float(np.mean((r[1] <= pool.high) & (r[2] >= pool.low))) for r in runs]
    print(f"\nage interval coverage {pct(covered)} % (seeds {100 * min(seed_cov):.1f}-{100 * max(seed_cov):.1f}), "
          f"median width {np.median(width):.0f} y; a face labelled with an age group is covered when the "
          "interval overlaps it")
    print("\nby band of predicted age (what age_uncertain keys on):")
    print("| predicted | faces | median width | covered % | MAE | bucket % |\n|---|---|---|---|---|---|")
    band = np.searchsorted(AGE_EDGES, years, side="right")
    exact = pool.low == pool.high
    bucket_ok = np.array([bucket_index(y) == bucket_index(a) for y, a in zip(years, pool.low)])
    edges = (0, *AGE_EDGES, 81)
    for b in range(len(AGE_EDGES) + 1):
        inside = band == b
        print(f"| {edges[b]:g}-{edges[b + 1]:g} | {inside.sum()} | {np.median(width[inside]):.0f} | "
              f"{pct(covered[inside])} | {np.abs(years - pool.low)[inside & exact].mean():.2f} | "
              f"{pct(bucket_ok[inside & exact])} |")
    quartile = np.searchsorted(np.percentile(pool.spread, [25, 50, 75]), pool.spread)
    print(f"\nby quartile of the mirror spread (pooled quartiles; spread_years {pool.spread_years:g}): "
          "covered % / median width")
    print("| folder | median spread | " + " | ".join(f"Q{q + 1}" for q in range(4)) + " |\n|---|---|---|---|---|---|")
    for source in dict.fromkeys(pool.source):
        mine = pool.source == source
        cells = [mine & (quartile == q) for q in range(4)]
        print(f"| {source} | {np.median(pool.spread[mine]):.2f} y | "
              + " | ".join(f"{pct(covered[c])} / {np.median(width[c]):.0f}" for c in cells) + " |")
    groups = pool.high > pool.low
    if groups.any():
        inside = np.clip(np.minimum(high, pool.high) - np.maximum(low, pool.low) + 1, 0, None)
        print(f"faces labelled with a group: {pct(covered[groups])} % overlap it; on average "
              f"{100 * np.mean((inside / (pool.high - pool.low + 1))[groups]):.1f} % of the group's whole years lie "
              "inside the interval (the coverage if true ages were spread evenly within each group: a harsh bound)")
    wide = width > MAX_USEFUL_WIDTH
    for name, inside in ((f"wider than {MAX_USEFUL_WIDTH} y (age_uncertain)", wide),
                         (f"{CHILD_BELOW_YEARS:g}+ y, at most {MAX_USEFUL_WIDTH} y wide", ~wide & adult)):
        inside = inside & exact
        within5 = np.abs(np.floor(years + 0.5) - pool.low) <= 5
        print(f"{name}, exact ages: {inside.sum()} faces, MAE {np.abs(years - pool.low)[inside].mean():.2f}, "
              f"within ±5 y {pct(within5[inside])} %, bucket {pct(bucket_ok[inside])} %")

    header = ("| population | faces | in 80 % interval | MAE | median width | age_uncertain % "
              f"| decided % ({ADULT_FROM}+) | decided right % |\n|---|---|---|---|---|---|---|---|")
    seed_rows = [population_rows(pool, *r, SETTINGS.min_gender_confidence) for r in runs]
    print("\nper population, cross-fitted over the pool (MAE: to the group's range where labels are groups; "
          "coverage: min-max over fold seeds)")
    print(header)
    for i, row in enumerate(seed_rows[0]):
        span = sorted(float(rows[i][2]) for rows in seed_rows if rows[i][2] != "-")
        print(f"| {row[0]} | {row[1]} | {row[2]} ({span[0]:.1f}-{span[-1]:.1f}) | " + " | ".join(row[3:]) + " |")
    held_out = np.char.add(np.char.add(pool.source, ":"), pool.race)
    print("\nper population, each folder x race group held out (scored with parameters fitted on every other one)")
    print(header)
    for row in population_rows(pool, *pool.cross_fit(held_out=held_out), SETTINGS.min_gender_confidence):
        print("| " + " | ".join(str(v) for v in row) + " |")
    print(f"\nstress test: the net reading one decade of exact ages {MISREAD_YEARS:g} years younger (predictions "
          "lowered when scored, not when fitted; spread unchanged): coverage in that decade, cross-fitted")
    print(misread_coverage(pool))
    if len(set(pool.source)) > 1:
        print("\nper population, each folder held out (scored with parameters fitted on the other folders)")
        print(header)
        for row in population_rows(pool, *pool.cross_fit(held_out=pool.source), SETTINGS.min_gender_confidence):
            print("| " + " | ".join(str(v) for v in row) + " |")


def fitted_for(manifest: dict) -> dict:
    """The sha256 of each file of every net in the manifest (start-up checks those calibration.FITTED_NETS names)."""
    return {key: {role: f["sha256"] for role, f in net["files"].items()} for key, net in manifest["nets"].items()}


def write(pool: Pool, dumps: dict[str, Dump], folders: list[Path], model_dir: Path) -> Path:
    """Fit on every found face of every folder; write calibration.json and pin it in the manifest."""
    from evaluation import fitting
    from evaluation.evaluate import decade
    from handler import calibration

    gender = fitting.fit_platt(pool.p_male, pool.is_male)
    age = fitting.fit_intervals(pool.years, pool.low, AGE_EDGES, COVERAGE, ages_high=pool.high, spread=pool.spread,
                                spread_years=pool.spread_years)
    manifest_path = model_dir / "manifest.json"
    manifest = json.loads(manifest_path.read_text())

    def folder_entry(folder: Path) -> dict:
        dump = dumps[folder.resolve().name]
        labels = [lab for lab, f in zip(dump.labels, dump.found) if f]
        ranges = Counter(f"{lab.low:g}-{lab.high:g}" for lab in labels if lab.low != lab.high)
        return {"folder": folder.resolve().name,
                "labels_sha256": hashlib.sha256((folder / "labels.csv").read_bytes()).hexdigest(),
                "faces": len(labels),
                "make_up": {"gender": dict(Counter(lab.gender for lab in labels)),
                            "age": dict(ranges) if ranges else dict(Counter(decade(lab.age) for lab in labels)),
                            "race": dict(Counter(lab.race or "unlabelled" for lab in labels))}}

    shown = " ".join(str(f) if not f.is_absolute() else ".../" + f.name for f in folders)
    data = {
        "about": "Fitted by evaluation/calibrate.py; do not edit by hand (the manifest pins this file's sha256).",
        "command": f'make calibrate DATA="{shown}"',
        "data": {
            "folders": [folder_entry(f) for f in folders],
            "faces": len(pool.years),
            "note": "Pooled from these folders (e.g. UTKFace's aligned, frontal, well-lit crops and FairFace's "
                    "in-the-wild photos of seven race groups); holds for faces like these, not for every population.",
        },
        "fitted_for": fitted_for(manifest),
        "gender": {"method": "Platt scaling of the net's log-odds of male", "a": round(gender.a, 6),
                   "b": round(gender.b, 6)},
        "age": {"method": "split-conformal residual quantiles per band of predicted age, each residual "
                          "divided by 1 + mirror spread / spread_years",
                "coverage": COVERAGE, "edges": list(AGE_EDGES),
                "spread_years": pool.spread_years if math.isfinite(pool.spread_years) else None,
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
    ap.add_argument("data", type=Path, nargs="+",
                    help="UTKFace-format folders (labels.csv with file,age,gender[,race][,age_low,age_high])")
    ap.add_argument("--seeds", type=int, default=5, help="fold assignments to report the spread over")
    ap.add_argument("--report-only", action="store_true", help="print the cross-fitted tables, write nothing")
    ap.add_argument("--spread-years", type=float, default=SPREAD_YEARS,
                    help="mirror spread that doubles an interval (inf: one width per band, as before issue 27)")
    args = ap.parse_args()
    if not args.spread_years > 0:
        ap.error("--spread-years must be > 0 (inf for a fixed width)")
    if len({f.resolve().name for f in args.data}) != len(args.data):
        ap.error("the folders need different names (the report and calibration.json name them)")
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["MODEL_DIR"] = str(uncalibrated_model_dir(Path(tmp)))
        sys.path.insert(0, str(ROOT))
        from evaluation import face_dump

        dumps = {f.resolve().name: face_dump.load(f) for f in args.data}
        faces = dataclasses.replace(pool(dumps), spread_years=args.spread_years)
        report(faces, args.seeds)  # imports handler, whose nets load from the uncalibrated folder
        if not args.report_only:
            path = write(faces, dumps, args.data, MODELS)
            print(f"\nwrote {path.relative_to(ROOT)} and pinned it in models/manifest.json")


if __name__ == "__main__":
    main()
