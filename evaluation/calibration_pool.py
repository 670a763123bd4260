"""What calibrate fits on: every labelled folder's found faces pooled, and the settings of the fit.

The constants are the shipped calibration's design (coverage, the bandwidth, the spread divisor, the rules
start-up applies); `Pool.cross_fit` is the K-fold fit every printed figure comes from.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from evaluation.face_dump import Dump

# Bands of predicted age the report groups faces by (the interval itself has one pair per whole year):
# narrow where ages change fast, ~100 faces each on UTKFace-dev; 75+ apart because the net reads the oldest younger.
AGE_EDGES = (3.0, 7.0, 13.0, 20.0, 25.0, 30.0, 35.0, 40.0, 45.0, 50.0, 55.0, 60.0, 65.0, 70.0, 75.0)
COVERAGE = 0.8
# How far a face's neighbours in predicted age lend it their residuals: the sd of a Gaussian in
# log(1 + predicted years), about +-15 % of (1 + age): +-0.3 years at 1, +-4.6 at 30, +-9 at 60.
# Chosen by the cross-fitted interval score (fitting.interval_score: a proper score, no coverage target
# to tune to) over the pool, mean of 5 fold seeds: 26.17 at 0.1, 25.88 at 0.15, 25.86 at 0.2 and 0.3;
# the narrowest of that flat bottom keeps each band of predicted age nearest 80 % (worst of the report's
# 16 bands 4.6 points off at 0.15, 5.0 at 0.2). The 16 fixed bands it replaced scored 26.51 (worst band
# 4.0 off); a Gaussian in plain years (sd 8: 25.98) lent babies ten-year-olds' widths (worst band 19 off).
BANDWIDTH = 0.15
# The age net's mirror spread (years between its readings of the chip and of its mirror) that doubles
# a face's interval. Larger spreads went with larger errors on both sets, and more so on FairFace.
# Chosen as the divisor that evens coverage best across quartiles of the spread (the worst folder's
# range between its quartiles, mean of 5 fold seeds: 7.4 points at 12; 9.1 at 8, 9.2 at 16, 13.1 with
# a fixed width); docs/accuracy.md, "Numbers per population".
SPREAD_YEARS = 12.0
# Predicted younger than this: gender withheld (children's gender is near chance, docs/accuracy.md).
CHILD_BELOW_YEARS = 13.0
# An interval wider than this is age_uncertain (chosen from the per-band table `make calibrate` prints: with
# face-api.js's age the widest bands, predicted 40-55, are 24-25 years wide and their bucket is right < 50 %).
MAX_USEFUL_WIDTH = 24
FOLDS = 5
MISREAD_YEARS = 4.7  # the stress test: a decade read this much younger (an independent set's worst band)
ADULT_FROM = 13  # decided share and accuracy count faces whose label is at least this old


@dataclass(frozen=True)
class Pool:
    """The found faces of every folder, side by side (one entry per face)."""

    source: np.ndarray      # folder name
    race: np.ndarray        # race group ('' where unlabelled)
    low: np.ndarray         # exact age, or the low end of its age group
    high: np.ndarray        # = low, or the high end of its age group
    is_male: np.ndarray
    p_male: np.ndarray      # uncalibrated
    years: np.ndarray
    spread: np.ndarray      # mirror spread, years
    spread_years: float = SPREAD_YEARS
    bandwidth: float = BANDWIDTH
    coverage: float = COVERAGE

    @property
    def band(self) -> np.ndarray:
        """The label's age band: its decade (exact ages) or its group (ranges)."""
        from evaluation.scoring import age_band

        return np.array([age_band(lo, hi) for lo, hi in zip(self.low, self.high)])

    def cross_fit(self, seed: int = 0, held_out: np.ndarray | None = None,
                  misread: np.ndarray | None = None) -> tuple[np.ndarray, ...]:
        from evaluation import fitting

        return fitting.cross_fit(self.p_male, self.is_male, self.years, self.low, self.coverage, self.bandwidth,
                                 FOLDS, seed, ages_high=self.high, spread=self.spread,
                                 spread_years=self.spread_years, held_out=held_out, misread=misread)


def pool(dumps: dict[str, Dump]) -> Pool:
    """Every folder's found faces, in folder order."""
    rows = [(name, lab, d.p_male[i], d.years[i], d.mirror_spread[i]) for name, d in dumps.items()
            for i, lab in enumerate(d.labels) if d.found[i]]
    return Pool(np.array([r[0] for r in rows]), np.array([r[1].race or "" for r in rows]),
                np.array([r[1].low for r in rows]), np.array([r[1].high for r in rows]),
                np.array([r[1].gender == "male" for r in rows]), np.array([r[2] for r in rows]),
                np.array([r[3] for r in rows]), np.array([r[4] for r in rows]))
