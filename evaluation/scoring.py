"""Predictions scored against labels: the per-face record, one table row, and the rows per group.

What `python -m evaluation.evaluate` prints and writes, apart from how the predictions were made
(evaluation.evaluate for ours, evaluation.reference_package for the reference's). The age bands here
also group calibrate's per-population report (evaluation.calibration_report).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np

from evaluation import range_coverage
from evaluation.fitting import expected_calibration_error
from evaluation.labels import GENDERS, RACES, Label
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
    """An exact age's decade, or the age group ('20-29', an open one '70+') where the label is a group."""
    if low == high:
        return decade(low)
    return f"{low:g}+" if high >= range_coverage.OPEN_END else f"{low:g}-{high:g}"


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
        held = range_coverage.coverage(*np.array([(p.low, p.high, lab.low, lab.high) for lab, p in pairs]).T)
        row.update(covered_pct=100 * float(np.mean(held.expected)),
                   median_width=statistics.median(p.high - p.low for _, p in pairs))
        if any(lab.high > lab.low for lab, _ in pairs):   # the bounds beside the expected figure
            row.update(overlap_pct=100 * float(np.mean(held.overlap)), whole_pct=100 * float(np.mean(held.whole)))
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
