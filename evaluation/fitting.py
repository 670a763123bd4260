"""Fitting the calibration (`make calibrate`) and scoring it (`make eval`): pure numpy, tested without data.

handler/calibration.py holds the fitted parameters as the runtime uses them; this module
holds the maths that produces and scores them, which only evaluation/ runs (`make calibrate` and
`make eval`).
"""

from __future__ import annotations

import math

import numpy as np

from handler.calibration import AgeIntervals, GenderCalibration, spread_scale

# The oldest whole year of predicted age with its own quantiles (older readings take its pair).
MAX_YEARS = 100


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


def conformal_quantiles(residuals: np.ndarray, coverage: float, upper_residuals: np.ndarray | None = None,
                        weights: np.ndarray | None = None) -> tuple[float, float]:
    """Split-conformal (q_lo, q_hi): each tail holds at most (1 - coverage) / 2 of n + 1.

    q_lo is taken over `residuals`, q_hi over `upper_residuals` (default: the same). With an age
    group's range as the label, residuals = high - predicted and upper_residuals = low - predicted:
    [predicted + q_lo, predicted + q_hi] then overlaps the group as often as it would hold an exact age.
    With `weights` (>= 0, e.g. how near each face's predicted age is), the quantiles are of the weighted
    distribution and n is the effective number of faces, (sum w)^2 / sum w^2; equal weights give exactly
    the unweighted quantiles.
    """
    lower = np.asarray(residuals, np.float64)
    upper = lower if upper_residuals is None else np.asarray(upper_residuals, np.float64)
    w = np.ones(len(lower)) if weights is None else np.asarray(weights, np.float64)
    if not len(lower) or len(upper) != len(lower) or len(w) != len(lower) or not w.sum() > 0:
        raise ValueError("no residuals to take quantiles of (or lower, upper and weights of different lengths)")
    n = w.sum() ** 2 / (w @ w)
    tail = (1 - coverage) / 2
    # The k-th smallest of n is the first whose cumulative weight share reaches k / n (1e-9: float sums).
    q_lo = _weighted_at(lower, w, math.floor((n + 1) * tail + 1e-9) / n - 1e-9)
    q_hi = _weighted_at(upper, w, math.ceil((n + 1) * (1 - tail) - 1e-9) / n - 1e-9)
    # Only range labels can cross the two (a band where every group would be overlapped by one point):
    # then the one point in the middle.
    return (q_lo, q_hi) if q_lo <= q_hi else ((q_lo + q_hi) / 2,) * 2


def _weighted_at(values: np.ndarray, weights: np.ndarray, share: float) -> float:
    """The smallest value whose cumulative weight share (ascending order) reaches `share` (clipped to the ends)."""
    order = np.argsort(values, kind="stable")
    cumulative = np.cumsum(weights[order]) / weights.sum()
    return float(values[order][min(int(np.searchsorted(cumulative, share)), len(values) - 1)])


def fit_intervals(years: np.ndarray, ages: np.ndarray, coverage: float, bandwidth: float, *,
                  ages_high: np.ndarray | None = None, spread: np.ndarray | None = None,
                  spread_years: float = math.inf, max_years: int = MAX_YEARS) -> AgeIntervals:
    """Localised conformal residual quantiles, one pair per whole year of predicted age, normalised per face.

    The quantiles for a face read as g years weigh each calibration face by a Gaussian of the distance
    between log(1 + its predicted age) and log(1 + g), sd `bandwidth` (inf: one pooled pair for every
    age): a band per year whose neighbours lend it faces, about +-bandwidth x (1 + g) years of them, so
    a baby borrows from babies and a 60-year-old from a decade around, and widths change smoothly
    instead of stepping at band edges. `ages` are exact ages, or with `ages_high` the low ends of age
    groups (the label is the range). With `spread` (the mirror spread per face) and a finite
    `spread_years`, each residual is divided by 1 + spread / spread_years, so the fitted quantiles are
    those of a face whose chip and mirror agree.
    """
    if not bandwidth > 0:
        raise ValueError("bandwidth must be > 0 (inf: one width for every age)")
    years, low = np.asarray(years, np.float64), np.asarray(ages, np.float64)
    high = low if ages_high is None else np.asarray(ages_high, np.float64)
    if not len(years):
        raise ValueError("no faces to fit age intervals on")
    scale = spread_scale(np.zeros_like(years) if spread is None else spread, spread_years)
    lower, upper = (high - years) / scale, (low - years) / scale
    position = np.log1p(np.maximum(years, 0))
    quantiles = []
    for g in range(max_years + 1):
        z = (position - math.log1p(g)) / bandwidth
        # Relative to the nearest face, so ages far from every face still weigh something.
        quantiles.append(conformal_quantiles(lower, coverage, upper, np.exp(-0.5 * (z ** 2 - np.min(z ** 2)))))
    edges = tuple(g + 0.5 for g in range(max_years))   # a face read as g +- 0.5 years takes year g's pair
    return AgeIntervals(coverage, edges, tuple(quantiles), spread_years)


def interval_score(low: np.ndarray, high: np.ndarray, label_low: np.ndarray, label_high: np.ndarray,
                   coverage: float) -> float:
    """Mean interval (Winkler) score: width plus 2 / (1 - coverage) times how far the label lies outside.

    A proper score for a central interval at this coverage (lower is better): it rewards narrow
    intervals and charges misses by their distance, so it ranks fitting choices without a target to tune to.
    """
    miss = np.maximum(0, np.asarray(low) - label_high) + np.maximum(0, np.asarray(label_low) - high)
    return float(np.mean(np.asarray(high) - low + 2 / (1 - coverage) * miss))


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


def intervals_of(intervals: AgeIntervals, years: np.ndarray, spread: np.ndarray | None = None) -> np.ndarray:
    """[N, 2] whole-year (low, high) for each face, as the pipeline reports them."""
    spread = np.zeros(len(years)) if spread is None else spread
    return np.array([intervals.interval(float(y), float(s)) for y, s in zip(years, spread)]).reshape(-1, 2)


def cross_fit(p_male_raw: np.ndarray, is_male: np.ndarray, years: np.ndarray, ages: np.ndarray,
              coverage: float, bandwidth: float, folds: int = 5, seed: int = 0, *,
              ages_high: np.ndarray | None = None, spread: np.ndarray | None = None,
              spread_years: float = math.inf, held_out: np.ndarray | None = None,
              misread: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Out-of-fold calibrated p(male), interval lows and highs: each face's from the folds that did not hold it.

    `held_out` (a label per face, e.g. a race group) replaces the random folds: each group's faces
    are then scored with parameters fitted on every other group (leave one group out). `misread`
    (years per face) is added to the held faces' predicted age when scoring, never when fitting:
    a stress test of a net that reads some population older or younger than the calibration saw.
    """
    n = len(years)
    fold = np.random.default_rng(seed).permutation(n) % folds if held_out is None else np.asarray(held_out)
    high_all = ages if ages_high is None else ages_high
    spread_all = np.zeros(n) if spread is None else np.asarray(spread, np.float64)
    p_male, low, high = np.empty(n), np.empty(n), np.empty(n)
    for k in np.unique(fold):
        fit, held = fold != k, fold == k
        p_male[held] = fit_platt(p_male_raw[fit], is_male[fit]).p_male(p_male_raw[held])
        intervals = fit_intervals(years[fit], ages[fit], coverage, bandwidth, ages_high=high_all[fit],
                                  spread=spread_all[fit], spread_years=spread_years)
        scored = years[held] if misread is None else years[held] + misread[held]
        low[held], high[held] = intervals_of(intervals, scored, spread_all[held]).T
    return p_male, low, high
