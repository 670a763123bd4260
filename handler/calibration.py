"""Calibrated gender probability and age intervals: the fitted parameters, their checks, and the maths.

The parameters live in `models/calibration.json`, beside the manifest, written by
`make calibrate` (tools/calibrate.py) with the data and command that produced them.
The manifest pins the file's size and sha256, and the file names the sha256 of every
net's weights it was fitted on: start-up refuses a calibration fitted for other nets,
so changing a net means re-running `make calibrate`, never silently wrong numbers.

Gender: Platt scaling of the net's log-odds, p(male) = sigmoid(a * log(p / (1 - p)) + b).
Age: split-conformal quantiles of the residual (true - predicted years), per band of the
predicted age, so the interval [years + q_lo, years + q_hi] holds `coverage` of faces
like the calibration set within each band.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from handler.errors import ModelError

FILE_NAME = "calibration.json"
REFIT = "run `make calibrate DATA=<labelled folder>` (see README, Accuracy)"
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
    manifest = json.loads((model_dir / "manifest.json").read_text())
    entry = manifest.get("calibration")
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
        now = {role: f["sha256"] for role, f in manifest["nets"][key]["files"].items()}
        if fitted_for.get(key) != now:
            raise ModelError(f"calibration file {path} was fitted for another {key!r} net than the manifest's; {REFIT}")
    return calibration


# ---- fitting (used by tools/calibrate.py; pure numpy, tested without data) ----

def fit_platt(p_male_raw: np.ndarray, is_male: np.ndarray, iterations: int = 100) -> GenderCalibration:
    """Maximum-likelihood Platt scaling: Newton's method from (0, 0), halving steps that don't lower the loss."""
    p = np.clip(np.asarray(p_male_raw, np.float64), 1e-7, 1 - 1e-7)
    x = np.column_stack([np.log(p / (1 - p)), np.ones_like(p)])
    y = np.asarray(is_male, np.float64)
    ridge = 1e-6  # keeps the Hessian invertible when the classes separate

    def loss(w: np.ndarray) -> float:
        z = x @ w
        return float(np.sum(np.logaddexp(0, z) - y * z) + ridge * w @ w / 2)

    w = np.zeros(2)
    for _ in range(iterations):
        q = 1 / (1 + np.exp(-np.clip(x @ w, -500, 500)))
        hessian = (x * (q * (1 - q))[:, None]).T @ x + ridge * np.eye(2)
        step = np.linalg.solve(hessian, x.T @ (q - y) + ridge * w)
        scale = 1.0
        while loss(w - scale * step) > loss(w) and scale > 1e-6:
            scale /= 2
        w = w - scale * step
        if np.abs(scale * step).max() < 1e-10:
            break
    return GenderCalibration(float(w[0]), float(w[1]))


def conformal_quantiles(residuals: np.ndarray, coverage: float) -> tuple[float, float]:
    """Split-conformal (q_lo, q_hi) of residuals: each tail holds at most (1 - coverage) / 2 of n + 1."""
    r = np.sort(np.asarray(residuals, np.float64))
    n = len(r)
    if n == 0:
        raise ValueError("no residuals to take quantiles of")
    tail = (1 - coverage) / 2
    lo = max(math.floor((n + 1) * tail) - 1, 0)
    hi = min(math.ceil((n + 1) * (1 - tail)) - 1, n - 1)
    return float(r[lo]), float(r[hi])


def fit_intervals(years: np.ndarray, ages: np.ndarray, edges: tuple[float, ...], coverage: float) -> AgeIntervals:
    """Conformal residual quantiles per band of predicted years."""
    years, ages = np.asarray(years, np.float64), np.asarray(ages, np.float64)
    band = np.searchsorted(edges, years, side="right")
    filled = np.unique(band)
    if not len(filled):
        raise ValueError("no faces to fit age intervals on")
    quantiles = []
    for b in range(len(edges) + 1):
        # A band without faces (only in small subsets) borrows the nearest band's quantiles.
        nearest = filled[np.argmin(np.abs(filled - b))]
        inside = band == nearest
        quantiles.append(conformal_quantiles(ages[inside] - years[inside], coverage))
    return AgeIntervals(coverage, tuple(float(e) for e in edges), tuple(quantiles))


def expected_calibration_error(confidence: np.ndarray, correct: np.ndarray, bins: int = 10) -> float:
    """ECE of decided answers: |accuracy - mean confidence| per equal-width bin over [0.5, 1], weighted by faces."""
    confidence, correct = np.asarray(confidence, np.float64), np.asarray(correct, bool)
    which = np.clip(((confidence - 0.5) * 2 * bins).astype(int), 0, bins - 1)
    error = 0.0
    for b in range(bins):
        inside = which == b
        if inside.any():
            error += inside.mean() * abs(correct[inside].mean() - confidence[inside].mean())
    return float(error)


def gender_ece(p_male: np.ndarray, is_male: np.ndarray, bins: int = 10) -> float:
    """ECE of the argmax answer of p(male)."""
    p_male = np.asarray(p_male, np.float64)
    return expected_calibration_error(np.maximum(p_male, 1 - p_male), (p_male >= 0.5) == np.asarray(is_male, bool),
                                      bins)


def cross_fit(p_male_raw: np.ndarray, is_male: np.ndarray, years: np.ndarray, ages: np.ndarray,
              edges: tuple[float, ...], coverage: float, folds: int = 5,
              seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Out-of-fold calibrated p(male), interval lows and highs: each face's from the folds that did not hold it."""
    n = len(years)
    fold = np.random.default_rng(seed).permutation(n) % folds
    p_male, low, high = np.empty(n), np.empty(n), np.empty(n)
    for k in range(folds):
        fit, held = fold != k, fold == k
        p_male[held] = fit_platt(p_male_raw[fit], is_male[fit]).p_male(p_male_raw[held])
        intervals = fit_intervals(years[fit], ages[fit], edges, coverage)
        low[held], high[held] = np.array([intervals.interval(y) for y in years[held]]).T.reshape(2, -1)
    return p_male, low, high
