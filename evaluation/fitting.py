"""Fitting the calibration (`make calibrate`) and scoring it (`make eval`): pure numpy, tested without data.

handler/calibration.py holds the fitted parameters as the runtime uses them; this module
holds the maths that produces and scores them, which only evaluation/calibrate.py and
evaluation/evaluate.py run.
"""

from __future__ import annotations

import math

import numpy as np

from handler.calibration import AgeIntervals, GenderCalibration


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
