"""Calibrated gender probability and age intervals: the fitted parameters, their checks, and their use.

The parameters live in `models/calibration.json`, beside the manifest, written by
`make calibrate` (evaluation/calibrate.py) with the data and command that produced them.
The manifest pins the file's size and sha256, and the file names the sha256 of every
net's weights it was fitted on: start-up refuses a calibration fitted for other nets,
so changing a net means re-running `make calibrate`, never silently wrong numbers.

Gender: Platt scaling of the net's log-odds, p(male) = sigmoid(a * log(p / (1 - p)) + b).
Age: split-conformal quantiles of the residual (true - predicted years), per band of the
predicted age, so the interval [years + q_lo, years + q_hi] holds `coverage` of faces
like the calibration set within each band. The fitting is evaluation/fitting.py's (dev only).
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


@dataclass(frozen=True)
class AgeIntervals:
    """Residual quantiles per band of predicted age: [years + q_lo, years + q_hi] in whole years."""

    coverage: float
    edges: tuple[float, ...]            # band i is edges[i-1] <= years < edges[i] (open at both ends)
    quantiles: tuple[tuple[float, float], ...]   # (q_lo, q_hi) per band, len(edges) + 1

    def interval(self, years: float) -> tuple[int, int]:
        """(low, high) whole years; a whole-year age a is inside when low <= a <= high."""
        q_lo, q_hi = self.quantiles[int(np.searchsorted(self.edges, years, side="right"))]
        # ceil/floor: a whole-year age >= years + q_lo iff it is >= ceil(years + q_lo).
        return max(0, math.ceil(years + q_lo - 1e-9)), math.floor(years + q_hi + 1e-9)


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
    return Calibration(
        gender=GenderCalibration(float(gender["a"]), float(gender["b"])),
        age=AgeIntervals(float(age["coverage"]), edges, quantiles),
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
