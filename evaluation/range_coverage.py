"""How often an age interval holds the true age when the label is an age group (FairFace's), three ways.

With an exact age the interval holds it or not. With a group (20-29) the true age is unknown inside
it, so "held" has three readings, per face:
- **expected**: the share of the group's whole years inside the interval, i.e. the probability the
  interval holds the true age if ages are spread evenly over the group (the headline figure);
- **overlap**: the interval reaches the group at all (what the fit uses; the upper bound);
- **whole group**: the interval holds every year of the group (the lower bound).
For an exact age all three are the same 0 or 1. Whole years throughout, as the labels and intervals:
[lo, hi] holds the ages in [lo, hi + 1), a group a-b the ages in [a, b + 1).

Pure numpy; evaluation/scoring.py (`make eval`) and evaluation/calibration_report.py (`make calibrate`)
score with it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# FairFace's last group is open ("more than 70" in its label list; labels.csv writes 70-100, which the
# fit's overlap rule never reaches), and an even spread needs an end: 70-89, two of its neighbours' width,
# leaving out the few over 90. The net reads FairFace's 70+ faces younger (median 68.1) than UTKFace-dev's
# exact 70-89s (73.5; its 70-79s 70.2), so the group is likely younger than an even 70-89 and this end
# errs low; `make calibrate` prints the group's figure at other ends (docs/accuracy.md, "Range labels").
OPEN_END = 90


@dataclass(frozen=True)
class RangeCoverage:
    """Per face: the expected share held, and whether the interval overlaps or holds the whole label."""

    expected: np.ndarray
    overlap: np.ndarray
    whole: np.ndarray


def label_years(label_low: np.ndarray, label_high: np.ndarray, open_end: float = OPEN_END) -> tuple[np.ndarray, ...]:
    """(first, last) whole year a label stands for: an exact age is itself; a group running past
    `open_end` - 1 (an open one) ends there."""
    low, high = np.asarray(label_low, np.float64), np.asarray(label_high, np.float64)
    return low, np.where(high > low, np.clip(high, low, open_end - 1), high)


def coverage(low: np.ndarray, high: np.ndarray, label_low: np.ndarray, label_high: np.ndarray,
             open_end: float = OPEN_END) -> RangeCoverage:
    """The three readings for whole-year intervals [low, high] against labels [label_low, label_high]."""
    low, high = np.asarray(low, np.float64), np.asarray(high, np.float64)
    first, last = label_years(label_low, label_high, open_end)
    held = np.clip(np.minimum(high, last) - np.maximum(low, first) + 1, 0, None)
    return RangeCoverage(held / (last - first + 1), (low <= last) & (high >= first), (low <= first) & (high >= last))


def groups_of(ages: np.ndarray, groups: list[tuple[float, float]]) -> tuple[np.ndarray, np.ndarray]:
    """(low, high) of the group (sorted, contiguous, the first starting at or below every age) each exact
    age falls in: exact ages bucketed as if they were labelled with groups; past the last group's start,
    the last group."""
    starts = np.array([lo for lo, _ in groups], np.float64)
    which = np.searchsorted(starts, np.floor(np.asarray(ages, np.float64)), side="right") - 1
    return starts[which], np.array([hi for _, hi in groups], np.float64)[which]


def others_in_group(low: np.ndarray, high: np.ndarray, ages: np.ndarray, group: np.ndarray) -> np.ndarray:
    """Per face, the share of its group's faces' exact ages (its own among them) its interval holds.

    The expected coverage with the group's real spread of ages in place of an even one, still blind to
    which of them is this face's: where it sits near the expected figure the even spread is not what
    makes that figure differ from the exact one.
    """
    low, high, ages, group = (np.asarray(a) for a in (low, high, ages, group))
    out = np.empty(len(ages))
    for g in np.unique(group):
        mine = np.flatnonzero(group == g)
        theirs = ages[mine][None, :]
        out[mine] = ((low[mine, None] <= theirs) & (high[mine, None] >= theirs)).mean(axis=1)
    return out
