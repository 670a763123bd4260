"""Calibrated gender probability and age intervals: the fitted parameters, their checks, and their use.

The parameters live in `models/calibration.json`, beside the manifest, written by
`make calibrate` (evaluation/calibrate.py) with the data and command that produced them.
The manifest pins the file's size and sha256, and the file names the sha256 of every
net's weights it was fitted on: start-up refuses a calibration fitted for other nets,
so changing a net means re-running `make calibrate`, never silently wrong numbers.

Gender: Platt scaling of the net's log-odds, p(male) = sigmoid(a * log(p / (1 - p)) + b).
Age: normalised split-conformal quantiles of the residual (true - predicted years), per band
of the predicted age, so the interval [years + s * q_lo, years + s * q_hi] holds `coverage` of
faces like the calibration set within each band. Today's file has one band per whole year
(edges at 0.5, 1.5, ... 99.5), each fitted on faces weighted by how near their predicted age is
(localised conformal prediction); this module only looks the band up. s = 1 + spread / spread_years
grows with the face's difficulty: `spread` is how far the age net's readings of the chip and of
its mirror image disagree (years). The fitting is evaluation/fitting.py's (dev only).
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from handler import manifest
from handler.errors import ModelError

FILE_NAME = "calibration.json"
REFIT = "run `make calibrate DATA=<labelled folder>` (see docs/accuracy.md)"
# The nets whose outputs (or whose chips) the parameters depend on.
FITTED_NETS = ("detector", "landmarks", "gender", "agegender")


@dataclass(frozen=True)
class GenderCalibration:
    """Platt scaling of the gender net's log-odds of `male`."""

    a: float
    b: float

    def p_male(self, p_male_raw: float | np.ndarray) -> float | np.ndarray:
        """Calibrated probability of `male` from the net's (mirror-averaged) softmax for `male`."""
        p = np.clip(p_male_raw, 1e-7, 1 - 1e-7)
        return 1 / (1 + np.exp(-np.clip(self.a * np.log(p / (1 - p)) + self.b, -500, 500)))


def spread_scale(spread: float | np.ndarray, spread_years: float) -> np.ndarray:
    """How many times wider than a face whose chip and mirror agree (1 at spread 0; always 1 for inf)."""
    spread = np.asarray(spread, np.float64)
    return 1 + spread / spread_years if math.isfinite(spread_years) else np.ones_like(spread)


@dataclass(frozen=True)
class AgeIntervals:
    """Residual quantiles per band of predicted age: [years + s * q_lo, years + s * q_hi] in whole years."""

    coverage: float
    edges: tuple[float, ...]            # band i is edges[i-1] <= years < edges[i] (open at both ends)
    quantiles: tuple[tuple[float, float], ...]   # (q_lo, q_hi) per band, len(edges) + 1, at spread 0
    spread_years: float = math.inf      # the mirror spread that doubles the interval (inf: fixed width)

    def interval(self, years: float, spread: float = 0.0) -> tuple[int, int]:
        """(low, high) whole years; a whole-year age a is inside when low <= a <= high."""
        q_lo, q_hi = self.quantiles[int(np.searchsorted(self.edges, years, side="right"))]
        s = float(spread_scale(spread, self.spread_years))
        # ceil/floor: a whole-year age >= years + q_lo iff it is >= ceil(years + q_lo).
        return max(0, math.ceil(years + s * q_lo - 1e-9)), math.floor(years + s * q_hi + 1e-9)


@dataclass(frozen=True)
class Calibration:
    """Everything `make calibrate` fitted, as the pipeline uses it."""

    gender: GenderCalibration
    age: AgeIntervals
    child_below_years: float      # predicted younger: gender withheld, age_uncertain
    max_useful_width: int         # a wider age interval is age_uncertain


def from_dict(data: dict[str, Any]) -> Calibration:
    """Build a Calibration from calibration.json's parsed content (KeyError/TypeError/ValueError if malformed)."""
    gender, age, rules = data["gender"], data["age"], data["rules"]
    edges = tuple(float(e) for e in age["edges"])
    quantiles = tuple((float(lo), float(hi)) for lo, hi in age["quantiles"])
    if len(quantiles) != len(edges) + 1 or list(edges) != sorted(edges):
        raise ValueError("age.quantiles needs one (q_lo, q_hi) per band: len(edges) + 1, edges ascending")
    if age.get("spread_years") is not None and not float(age["spread_years"]) > 0:
        raise ValueError("age.spread_years must be a positive number of years (or null: a fixed width)")
    return Calibration(
        gender=GenderCalibration(float(gender["a"]), float(gender["b"])),
        age=AgeIntervals(float(age["coverage"]), edges, quantiles,
                         math.inf if age.get("spread_years") is None else float(age["spread_years"])),
        child_below_years=float(rules["child_below_years"]),
        max_useful_width=int(rules["max_useful_width"]),
    )


def load(model_dir: Path) -> Calibration:
    """Read calibration.json, check it against the manifest's pin and the nets it was fitted for."""
    pinned = manifest.read(model_dir)
    entry = pinned.calibration
    if not isinstance(entry, dict):
        raise ModelError(f"model manifest in {model_dir} has no `calibration` entry; {REFIT}")
    path = (model_dir / entry.get("name", FILE_NAME)).resolve()
    if not path.is_file():
        raise ModelError(f"calibration file missing: {path}; {REFIT}")
    raw = path.read_bytes()
    if len(raw) != entry.get("bytes") or hashlib.sha256(raw).hexdigest() != entry.get("sha256"):
        raise ModelError(f"calibration file {path} does not match the manifest's size and sha256 "
                         f"(edited by hand?); {REFIT}")
    try:
        data = json.loads(raw)
        calibration = from_dict(data)
        fitted_for = data["fitted_for"]
    except (ValueError, KeyError, TypeError) as exc:
        raise ModelError(f"calibration file {path} is malformed ({exc!r}); {REFIT}") from None
    for key in FITTED_NETS:
        now = {role: sha256 for role, (_, sha256) in pinned.nets[key].expected.items()}
        if fitted_for.get(key) != now:
            raise ModelError(f"calibration file {path} was fitted for another {key!r} net than the manifest's; {REFIT}")
    return calibration
