"""Coverage against age-group labels (evaluation/range_coverage.py), by hand."""

from __future__ import annotations

import numpy as np
import pytest

from evaluation.range_coverage import OPEN_END, coverage, groups_of, label_years, others_in_group


def one(low: float, high: float, label_low: float, label_high: float) -> tuple[float, bool, bool]:
    held = coverage([low], [high], [label_low], [label_high])
    return float(held.expected[0]), bool(held.overlap[0]), bool(held.whole[0])


@pytest.mark.parametrize(("interval", "group", "expected"), [
    ((22, 25), (20, 29), (0.4, True, False)),    # inside: 22, 23, 24, 25 of the group's 10 years
    ((15, 35), (20, 29), (1.0, True, True)),     # holds the whole group
    ((20, 29), (20, 29), (1.0, True, True)),     # exactly the group: both ends are whole years held
    ((10, 21), (20, 29), (0.2, True, False)),    # straddles the low end: 20 and 21
    ((29, 40), (20, 29), (0.1, True, False)),    # touches the last year only: "covered" by overlap
    ((30, 40), (20, 29), (0.0, False, False)),   # just past the group
    ((0, 1), (0, 2), (2 / 3, True, False)),      # babies: 0 and 1 of 0-2
    ((3, 3), (3, 9), (1 / 7, True, False)),      # a one-year interval in a 7-year group
])
def test_the_three_readings_by_hand(interval: tuple[int, int], group: tuple[int, int],
                                    expected: tuple[float, bool, bool]) -> None:
    got = one(*interval, *group)
    assert got[0] == pytest.approx(expected[0]) and got[1:] == expected[1:]


def test_whole_group_le_expected_le_overlap() -> None:
    rng = np.random.default_rng(0)
    low = rng.integers(0, 90, 500)
    high = low + rng.integers(0, 30, 500)
    g_low = rng.integers(0, 80, 500)
    held = coverage(low, high, g_low, g_low + rng.integers(0, 15, 500))
    assert np.all(held.whole <= held.expected) and np.all(held.expected <= held.overlap)
    assert np.all(held.whole == (held.expected == 1)) and np.all(held.overlap == (held.expected > 0))


def test_an_exact_age_is_held_or_not() -> None:
    held = coverage([20, 20, 20, 90], [30, 30, 30, 110], [20, 30, 31, 105], [20, 30, 31, 105])
    assert held.expected.tolist() == [1, 1, 0, 1]    # both ends count; 105 stays 105 (not an open group)
    assert held.overlap.tolist() == held.whole.tolist() == [True, True, False, True]


def test_the_open_group_ends_at_open_end() -> None:
    assert OPEN_END == 90
    first, last = label_years([70, 20, 95], [100, 29, 95])
    assert first.tolist() == [70, 20, 95] and last.tolist() == [89, 29, 95]
    # FairFace's 70+ (written 70-100 in labels.csv) is taken as the 20 years 70-89
    assert one(65, 79, 70, 100) == (pytest.approx(0.5), True, False)
    assert one(70, 89, 70, 100)[0] == 1.0 and one(70, 89, 70, 100)[2]
    assert one(90, 95, 70, 100)[:2] == (0.0, False)  # past the end the even spread assumes
    # ... and another end can be asked for
    assert float(coverage([65], [79], [70], [100], open_end=80).expected[0]) == 1.0


def test_exact_ages_are_bucketed_into_groups() -> None:
    groups = [(0, 2), (3, 9), (10, 19), (70, 100)]
    low, high = groups_of([0, 2.9, 3, 9.5, 19, 70, 104], groups)
    assert low.tolist() == [0, 0, 3, 3, 10, 70, 70] and high.tolist() == [2, 2, 9, 9, 19, 100, 100]


def test_others_in_group_hold_the_groups_own_ages() -> None:
    # Group 20 holds ages 21 and 28; group 30 holds 35 alone.
    low, high = np.array([20, 25, 30]), np.array([24, 29, 31])
    ages, group = np.array([21, 28, 35]), np.array([20, 20, 30])
    assert others_in_group(low, high, ages, group).tolist() == [0.5, 0.5, 0.0]
