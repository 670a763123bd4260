"""The calibration maths on synthetic data, and the start-up checks on the shipped file (no shared data needed)."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest

from evaluation.fitting import (
    conformal_quantiles,
    cross_fit,
    expected_calibration_error,
    fit_intervals,
    fit_platt,
    gender_ece,
    interval_score,
)
from handler import calibration
from handler.calibration import AgeIntervals
from handler.config import PACKAGE_MODELS_DIR
from handler.errors import ModelError


def overconfident_gender(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Raw p(male) whose log-odds are 2.5x too large: truth is sigmoid(0.4 * z + 0.3)."""
    rng = np.random.default_rng(seed)
    z = rng.normal(0, 6, n)
    is_male = rng.random(n) < 1 / (1 + np.exp(-(0.4 * z + 0.3)))
    return 1 / (1 + np.exp(-z)), is_male


def test_platt_recovers_the_true_scaling_and_lowers_ece() -> None:
    raw, is_male = overconfident_gender(20000)
    fitted = fit_platt(raw, is_male)
    assert fitted.a == pytest.approx(0.4, abs=0.03) and fitted.b == pytest.approx(0.3, abs=0.06)
    held_raw, held_male = overconfident_gender(20000, seed=1)
    assert gender_ece(held_raw, held_male) > 0.1
    assert gender_ece(fitted.p_male(held_raw), held_male) < 0.02


def test_platt_converges_on_saturated_and_separable_outputs() -> None:
    # Softmax outputs of exactly 0 and 1, and classes a threshold separates, must not diverge.
    raw = np.array([0.0, 1e-20, 0.3, 0.7, 1.0 - 1e-12, 1.0] * 20)
    fitted = fit_platt(raw, raw > 0.5)
    assert np.isfinite([fitted.a, fitted.b]).all() and fitted.a > 0
    assert fitted.p_male(np.array([0.0, 1.0])).tolist() == pytest.approx([0, 1], abs=1e-3)


def test_ece_by_hand() -> None:
    # Bins of 0.05 over [0.5, 1]: {0.55 x2: 1 of 2 right}, {0.95 x2: both right}.
    p_male = np.array([0.55, 0.45, 0.95, 0.05])
    is_male = np.array([True, True, True, False])
    assert gender_ece(p_male, is_male) == pytest.approx(0.5 * abs(0.5 - 0.55) + 0.5 * abs(1 - 0.95))
    assert expected_calibration_error([0.75, 0.75, 0.75, 0.75], [True, True, True, False]) == 0.0


def test_conformal_quantiles_leave_at_most_the_tail_out() -> None:
    residuals = np.arange(-50, 50, dtype=float)  # 100 values
    lo, hi = conformal_quantiles(residuals, 0.8)
    # (n + 1) * 0.1 = 10.1: the 10th smallest and the 91st smallest (ceil(90.9)).
    assert (lo, hi) == (-41.0, 40.0)
    assert np.mean((residuals >= lo) & (residuals <= hi)) >= 0.8


def test_equal_weights_give_the_unweighted_quantiles_and_zero_weights_drop_faces() -> None:
    rng = np.random.default_rng(0)
    for n in (1, 7, 10, 99, 100, 1001):
        lower, upper = rng.normal(0, 5, n), rng.normal(0, 5, n) + 20
        # Split-conformal by hand: the floor((n + 1) * 0.1)-th smallest and the ceil((n + 1) * 0.9)-th.
        by_hand = (np.sort(lower)[max(math.floor((n + 1) * 0.1) - 1, 0)],
                   np.sort(upper)[min(math.ceil((n + 1) * 0.9) - 1, n - 1)])
        assert conformal_quantiles(lower, 0.8, upper, np.full(n, 0.3)) == by_hand
    lower, upper = rng.normal(0, 5, 300), rng.normal(0, 5, 300)
    keep = rng.random(300) < 0.5
    assert conformal_quantiles(lower, 0.8, upper, keep.astype(float)) == \
        conformal_quantiles(lower[keep], 0.8, upper[keep])
    with pytest.raises(ValueError):
        conformal_quantiles(lower, 0.8, upper, np.zeros(300))


def test_weights_shrink_the_effective_count_so_few_near_faces_widen_the_tail() -> None:
    residuals = np.arange(-50, 50, dtype=float)
    # Ten faces carry all the weight: the 10th percentile of ~10 faces is their smallest.
    weights = np.where(np.arange(100) % 10 == 0, 1.0, 1e-12)
    assert conformal_quantiles(residuals, 0.8, weights=weights) == (-50.0, 40.0)


def test_localised_intervals_follow_the_error_at_each_age() -> None:
    rng = np.random.default_rng(1)

    def faces(n: int) -> tuple[np.ndarray, np.ndarray]:
        ages = np.floor(np.exp(rng.uniform(np.log(2), np.log(91), n)) - 1)   # whole years, 1-89, many babies
        return ages + rng.normal(0, 0.3 + 0.12 * ages), ages   # errors grow with age, as the net's do

    years, ages = faces(6000)
    intervals = fit_intervals(years, ages, 0.8, 0.15)
    assert len(intervals.quantiles) == 101 and intervals.edges[:2] == (0.5, 1.5)
    width = [intervals.interval(a)[1] - intervals.interval(a)[0] for a in (1.0, 10.0, 60.0)]
    assert width[0] <= 1 < width[1] < width[2]   # a baby's interval is fitted on babies, not on 10-year-olds
    new_years, new_ages = faces(6000)
    low, high = np.array([intervals.interval(y) for y in new_years]).T
    covered = (new_ages >= low) & (new_ages <= high)
    for lo, hi in ((0, 3), (3, 13), (13, 40), (40, 95)):   # holds within each range of predicted age
        inside = (new_years >= lo) & (new_years < hi)
        assert covered[inside].mean() == pytest.approx(0.8, abs=0.05)
    steps = np.abs(np.diff([q for pair in intervals.quantiles[20:] for q in pair[1:]]))
    assert steps.max() < 1.5   # neighbouring years lend each other faces: no step at a band edge


def test_an_infinite_bandwidth_is_one_pooled_pair_for_every_age() -> None:
    rng = np.random.default_rng(2)
    years, ages = rng.uniform(0, 80, 500), rng.uniform(0, 80, 500)
    intervals = fit_intervals(years, ages, 0.8, math.inf)
    assert set(intervals.quantiles) == {conformal_quantiles(ages - years, 0.8)}
    with pytest.raises(ValueError, match="bandwidth"):
        fit_intervals(years, ages, 0.8, 0.0)


def test_interval_score_by_hand() -> None:
    # Widths 4 and 2; the second misses an exact 13 by 1 year, the first overlaps its group: 4, 2 + 10 * 1.
    low, high = np.array([10.0, 10.0]), np.array([14.0, 12.0])
    assert interval_score(low, high, np.array([14.0, 13.0]), np.array([19.0, 13.0]), 0.8) == 8.0


def test_intervals_are_whole_years_and_cover_on_fresh_data() -> None:
    rng = np.random.default_rng(0)

    def faces(n: int) -> tuple[np.ndarray, np.ndarray]:
        ages = rng.integers(0, 90, n).astype(float)
        noise = rng.normal(0, 1 + ages / 10)   # older faces: wider errors, as with the real net
        return np.clip(ages + noise, 0, 80), ages

    years, ages = faces(4000)
    intervals = fit_intervals(years, ages, 0.8, 0.15)
    assert intervals.interval(5.0)[1] - intervals.interval(5.0)[0] < intervals.interval(60.0)[1] - \
        intervals.interval(60.0)[0]
    new_years, new_ages = faces(4000)
    low, high = np.array([intervals.interval(y) for y in new_years]).T
    assert np.mean((new_ages >= low) & (new_ages <= high)) == pytest.approx(0.8, abs=0.03)
    assert all(isinstance(v, int) for v in intervals.interval(33.3)) and intervals.interval(0.3)[0] >= 0


def test_interval_rounds_inwards_to_whole_years() -> None:
    intervals = AgeIntervals(0.8, (), ((-2.5, 3.5),))
    assert intervals.interval(10.2) == (8, 13)   # 7.7 -> 8, 13.7 -> 13: same whole ages as the real line


def test_cross_fit_scores_each_face_with_parameters_it_did_not_fit() -> None:
    raw, is_male = overconfident_gender(500)
    years = np.linspace(0, 80, 500)
    ages = years.copy()
    ages[0] = 1000.0    # an outlier can only widen the folds that fit on it
    p_male, low, high = cross_fit(raw, is_male, years, ages, 0.8, 0.15, folds=5)
    assert not ((low[0] <= 1000) & (1000 <= high[0]))
    assert p_male.shape == low.shape == (500,) and ((p_male > 0) & (p_male < 1)).all()


def test_range_labels_count_as_covered_when_the_interval_overlaps_them() -> None:
    # Ten-year groups around a net that reads the group's middle: any interval reaching the group covers it.
    years = np.repeat([25.0, 35.0, 45.0], 100)
    low = np.floor(years / 10) * 10
    intervals = fit_intervals(years, low, 0.8, 0.15, ages_high=low + 9)
    # The lower tail is fitted on (high - predicted) = +4, the upper on (low - predicted) = -5: crossed,
    # so both become the point between them, which lies inside every group.
    assert intervals.quantiles[35] == (-0.5, -0.5)
    assert conformal_quantiles([-1.0] * 10, 0.8, upper_residuals=[2.0] * 10) == (-1.0, 2.0)
    low, high = intervals.interval(35.0)
    assert 30 <= low <= high + 1 and high <= 39


def test_a_harder_face_gets_a_wider_interval_that_still_covers() -> None:
    rng = np.random.default_rng(0)

    def faces(n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        ages = rng.uniform(20, 60, n)
        spread = rng.exponential(3, n)
        return ages + rng.normal(0, 3 * (1 + spread / 8)), ages, spread   # errors grow with the spread

    years, ages, spread = faces(6000)
    flat = fit_intervals(years, ages, 0.8, math.inf)
    scaled = fit_intervals(years, ages, 0.8, math.inf, spread=spread, spread_years=8.0)
    assert scaled.interval(30.0, 8.0)[1] - scaled.interval(30.0, 8.0)[0] > \
        scaled.interval(30.0, 0.0)[1] - scaled.interval(30.0, 0.0)[0]
    new_years, new_ages, new_spread = faces(6000)
    hard = new_spread > np.median(new_spread)
    for intervals, at_least in ((flat, 0.0), (scaled, 0.77)):
        low, high = np.array([intervals.interval(y, s) for y, s in zip(new_years, new_spread)]).T
        covered = (new_ages >= np.floor(low)) & (new_ages <= high + 1)
        assert covered[hard].mean() >= at_least and covered[~hard].mean() >= at_least
    low, high = np.array([flat.interval(y) for y in new_years]).T
    assert ((new_ages >= low) & (new_ages <= high + 1))[hard].mean() < 0.77   # one width for all misses the hard


def test_a_fixed_width_calibration_ignores_the_spread() -> None:
    intervals = AgeIntervals(0.8, (), ((-2.5, 3.5),))
    assert intervals.interval(10.2, 5.0) == intervals.interval(10.2) == (8, 13)
    assert AgeIntervals(0.8, (), ((-2.5, 3.5),), spread_years=5.0).interval(10.2, 5.0) == (6, 17)


def test_cross_fit_can_hold_out_whole_groups() -> None:
    raw, is_male = overconfident_gender(400)
    years = np.linspace(0, 80, 400)
    ages = years + np.where(np.arange(400) < 100, 20.0, 0.0)   # group "a" is read 20 years too young
    group = np.where(np.arange(400) < 100, "a", "b")
    _, low, high = cross_fit(raw, is_male, years, ages, 0.8, 0.15, held_out=group)
    held = (ages >= low) & (ages <= high)
    assert held[:100].mean() < 0.2 and held[100:].mean() < 0.5   # each group scored by the other's fit


def test_malformed_spread_is_refused() -> None:
    with open(PACKAGE_MODELS_DIR / "calibration.json") as fh:
        data = json.load(fh)
    data["age"]["spread_years"] = 0
    with pytest.raises(ValueError, match="spread_years"):
        calibration.from_dict(data)


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    for name in ("manifest.json", "calibration.json"):
        shutil.copyfile(PACKAGE_MODELS_DIR / name, tmp_path / name)
    return tmp_path


def test_shipped_calibration_loads(model_dir: Path) -> None:
    loaded = calibration.load(model_dir)
    assert loaded.age.coverage == 0.8 and loaded.gender.a > 0
    # One (q_lo, q_hi) per whole year of predicted age, 0-100 (localised conformal, evaluation/fitting.py).
    assert loaded.age.edges == tuple(y + 0.5 for y in range(100)) and len(loaded.age.quantiles) == 101


@pytest.mark.parametrize(("change", "problem"), [
    (lambda d: (d / "calibration.json").unlink(), "calibration file missing"),
    (lambda d: (d / "calibration.json").write_text((d / "calibration.json").read_text().replace('"a": ', '"a": 1')),
     "does not match the manifest"),
    (lambda d: (d / "manifest.json").write_text((d / "manifest.json").read_text().replace(
        "d4c4116cf720cde18de28a09071d8e1826bcff7935ef3470052163f3f6b5d734", "0" * 64)), "another 'gender' net"),
])
def test_start_up_refuses_a_missing_edited_or_stale_calibration(model_dir: Path, change, problem: str) -> None:
    change(model_dir)
    with pytest.raises(ModelError, match=problem) as err:
        calibration.load(model_dir)
    assert "make calibrate" in str(err.value)


def test_calibration_file_names_its_data_and_command() -> None:
    data = json.loads((PACKAGE_MODELS_DIR / "calibration.json").read_text())
    assert data["command"].startswith("make calibrate") and data["data"]["faces"] > 0
    assert "not for every population" in data["data"]["note"]


def test_a_misread_moves_only_the_scored_faces_not_the_fit() -> None:
    raw, is_male = overconfident_gender(500)
    years = np.linspace(0, 80, 500)
    ages = years + np.random.default_rng(0).normal(0, 3, 500)
    _, low, high = cross_fit(raw, is_male, years, ages, 0.8, math.inf)
    _, low_m, high_m = cross_fit(raw, is_male, years, ages, 0.8, math.inf, misread=np.full(500, -10.0))
    assert np.abs(high_m - (high - 10)).max() <= 1   # the same intervals, 10 years lower (whole-year rounding)
    assert ((ages >= low_m) & (ages <= high_m)).mean() < 0.3 < ((ages >= low) & (ages <= high)).mean()
