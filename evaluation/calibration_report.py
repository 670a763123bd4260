"""What `make calibrate` prints: the cross-fitted tables, per population, held out and under stress.

Every figure comes from folds that did not fit it (calibration_pool.Pool.cross_fit). Handler and
scoring modules are imported inside the functions: importing handler loads the nets, which
calibrate.main allows only once MODEL_DIR points at its uncalibrated folder.
"""

from __future__ import annotations

import numpy as np

from evaluation import range_coverage
from evaluation.calibration_pool import (
    ADULT_FROM,
    AGE_EDGES,
    CHILD_BELOW_YEARS,
    FOLDS,
    MAX_USEFUL_WIDTH,
    MISREAD_YEARS,
    Pool,
)


def pct(x: np.ndarray) -> str:
    return f"{100 * float(np.mean(x)):.1f}" if len(x) else "-"


def population_rows(pool: Pool, p_male: np.ndarray, low: np.ndarray, high: np.ndarray,
                    min_confidence: float) -> list[tuple[str | int, ...]]:
    """Per folder, per age band and per race group: faces, coverage (expected where labels are groups),
    overlap / whole group, MAE, width, age_uncertain share, gender decided share and accuracy."""
    from evaluation.scoring import band_start

    held = range_coverage.coverage(low, high, pool.low, pool.high)
    groups = pool.high > pool.low
    error = np.maximum(0, np.maximum(pool.low - pool.years, pool.years - pool.high))  # 0 inside a group
    width = high - low
    conf = np.maximum(p_male, 1 - p_male)
    decided = (conf >= min_confidence) & (pool.years >= CHILD_BELOW_YEARS)
    right = (p_male >= 0.5) == pool.is_male
    adult = pool.low >= ADULT_FROM
    band = pool.band
    rows = []
    for source in dict.fromkeys(pool.source):
        mine = pool.source == source
        parts = [("all", mine)]
        parts += [(b, mine & (band == b)) for b in sorted(set(band[mine]), key=band_start)]
        parts += [(r, mine & (pool.race == r)) for r in sorted(set(pool.race[mine]) - {""})]
        for name, inside in parts:
            d = inside & adult & decided
            bounds = (f"{pct(held.overlap[inside])} / {pct(held.whole[inside])}" if groups[inside].all() else "-")
            rows.append((f"{source} {name}", int(inside.sum()), pct(held.expected[inside]), bounds,
                         f"{error[inside].mean():.2f}", f"{np.median(width[inside]):.0f}",
                         pct(width[inside] > MAX_USEFUL_WIDTH),
                         pct(decided[inside & adult]) if (inside & adult).any() else "-", pct(right[d])))
    return rows


def range_label_check(pool: Pool, low: np.ndarray, high: np.ndarray,
                      gap: dict[float | None, float] | None = None) -> dict[float | None, float]:
    """The expected coverage tried where the truth is known: exact ages bucketed into FairFace's groups.

    Per group: the exact coverage, the expected one from the group alone, the same with the group's
    own faces' ages in place of an even spread, overlap and whole group. Then each range-labelled
    folder's expected coverage moved by `gap` (default: this run's), group by group: an estimate that
    assumes the net tracks ages within a group there as it does on these faces. Returns this run's
    gaps (exact minus expected, per group start; None: overall).
    """
    from evaluation.fairface_labels import GROUPS
    from evaluation.scoring import age_band, band_start

    exact = pool.low == pool.high
    if not exact.any():
        return {}
    ff_groups = sorted({(lo, hi) for lo, hi, _ in GROUPS.values()})
    g_low, g_high = range_coverage.groups_of(pool.low[exact], ff_groups)
    held = range_coverage.coverage(low[exact], high[exact], g_low, g_high)
    truth = (low <= pool.low)[exact] & (high >= pool.low)[exact]
    others = range_coverage.others_in_group(low[exact], high[exact], pool.low[exact], g_low)
    print(f"\nexact ages bucketed into FairFace's groups (the open one taken as {ff_groups[-1][0]:g}-"
          f"{range_coverage.OPEN_END - 1:g} for the expected figure), coverage from the exact age and from the "
          "group alone")
    print("| group | faces | exact age % | expected from the group % | the group's own ages % "
          "| overlap % | whole group % |\n|---|---|---|---|---|---|---|")
    found: dict[float | None, float] = {}
    for g in [None, *dict.fromkeys(sorted(g_low))]:
        inside = np.ones(len(g_low), bool) if g is None else g_low == g
        found[g] = float(np.mean(truth[inside]) - np.mean(held.expected[inside]))
        name = "all" if g is None else age_band(g, g_high[inside][0])
        print(f"| {name} | {inside.sum()} | {pct(truth[inside])} | {pct(held.expected[inside])} | "
              f"{pct(others[inside])} | {pct(held.overlap[inside])} | {pct(held.whole[inside])} |")
    gap = found if gap is None else gap
    on_groups = pool.high > pool.low
    for source in dict.fromkeys(pool.source[on_groups]):
        mine = on_groups & (pool.source == source)
        expected = range_coverage.coverage(low[mine], high[mine], pool.low[mine], pool.high[mine]).expected
        moved = expected + np.array([gap.get(g, gap[None]) for g in pool.low[mine]])
        cells = ", ".join(f"{b}: {pct(moved[pool.band[mine] == b])}"
                          for b in sorted(set(pool.band[mine]), key=band_start))
        print(f"{source}'s expected coverage moved by each group's gap (exact - expected, "
              f"{'this run' if gap is found else 'the cross-fitted run'}): {pct(moved)} % ({cells}); "
              f"by the overall gap: {100 * (np.mean(expected) + gap[None]):.1f} %")
    return found


def misread_coverage(pool: Pool) -> str:
    """Per decade of exact ages: coverage when the net reads that decade MISREAD_YEARS younger than it did."""
    from evaluation.scoring import band_start

    exact, label_band = pool.low == pool.high, pool.band
    cells = []
    for name in sorted(set(label_band[exact]), key=band_start):
        inside = exact & (label_band == name)
        _, low, high = pool.cross_fit(misread=np.where(inside, -MISREAD_YEARS, 0.0))
        cells.append(f"{name}: {pct(((low <= pool.high) & (high >= pool.low))[inside])}")
    return ", ".join(cells)


def report(pool: Pool, seeds: int) -> None:
    """Cross-fitted tables (seed 0), with the spread over `seeds` fold assignments, then populations held out."""
    from evaluation import fitting
    from handler.config import SETTINGS
    from handler.readout import bucket_index

    runs = [pool.cross_fit(seed) for seed in range(seeds)]
    p_male, low, high = runs[0]
    is_male, years, raw = pool.is_male, pool.years, pool.p_male
    conf = np.maximum(p_male, 1 - p_male)
    correct = (p_male >= 0.5) == is_male
    adult = years >= CHILD_BELOW_YEARS
    eces = [fitting.gender_ece(r[0], is_male) for r in runs]
    print(f"\n{len(years)} faces found in {', '.join(dict.fromkeys(pool.source))}; {FOLDS}-fold cross-fitting "
          f"over the pool, {seeds} fold seeds")
    print(f"gender ECE (10 bins): raw net {fitting.gender_ece(raw, is_male):.4f}, "
          f"calibrated {eces[0]:.4f} (seeds: {min(eces):.4f}-{max(eces):.4f})")
    for source in dict.fromkeys(pool.source):
        mine = pool.source == source
        print(f"  {source}: calibrated ECE {fitting.gender_ece(p_male[mine], is_male[mine]):.4f}")
    print("\n| calibrated confidence | faces | correct % | mean confidence |\n|---|---|---|---|")
    for lo, hi in [(0.5, 0.6), (0.6, 0.7), (0.7, 0.8), (0.8, 0.9), (0.9, 0.95), (0.95, 1.01)]:
        inside = (conf >= lo) & (conf < hi)
        print(f"| {lo:.2f}-{min(hi, 1):.2f} | {inside.sum()} | {pct(correct[inside])} | "
              f"{conf[inside].mean() if inside.any() else float('nan'):.3f} |")
    print(f"\nthreshold on calibrated confidence, faces predicted >= {CHILD_BELOW_YEARS:g} y ({adult.sum()}):")
    print("| threshold | unknown % | decided correct % |\n|---|---|---|")
    for t in (0.5, 0.6, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95):
        decided = adult & (conf >= t)
        print(f"| {t:.2f} | {100 * (1 - decided.sum() / adult.sum()):.1f} | {pct(correct[decided])} |")
    child = ~adult
    print(f"faces predicted < {CHILD_BELOW_YEARS:g} y: {child.sum()}, argmax gender correct {pct(correct[child])} %")

    held = range_coverage.coverage(low, high, pool.low, pool.high)
    covered, groups = held.expected, pool.high > pool.low
    width = high - low
    seed_held = [range_coverage.coverage(r[1], r[2], pool.low, pool.high) for r in runs]
    seed_cov = [float(np.mean(h.expected)) for h in seed_held]
    scores = [fitting.interval_score(r[1], r[2], pool.low, pool.high, pool.coverage) for r in runs]
    print(f"\nage interval coverage {pct(covered)} % (seeds {100 * min(seed_cov):.1f}-{100 * max(seed_cov):.1f}), "
          f"median width {np.median(width):.0f} y; a face labelled with an age group counts the share of the "
          f"group's whole years the interval holds (its expected coverage if ages are spread evenly in the group; "
          f"an open group ends at {range_coverage.OPEN_END - 1:g})")
    if groups.any():
        seed_overlap = [float(np.mean(h.overlap[groups])) for h in seed_held]
        print(f"faces labelled with a group: expected {pct(covered[groups])} %, between whole group "
              f"{pct(held.whole[groups])} % and overlap {pct(held.overlap[groups])} % (seeds "
              f"{100 * min(seed_overlap):.1f}-{100 * max(seed_overlap):.1f}; the fit's rule)")
        open_group = groups & (pool.high >= range_coverage.OPEN_END)
        if open_group.any():
            ends = (80, 85, range_coverage.OPEN_END, 100)
            at_end = [range_coverage.coverage(low, high, pool.low, pool.high, e).expected[open_group] for e in ends]
            print(f"the open group ({open_group.sum()} faces), expected coverage if it ends at "
                  + ", ".join(f"{e - 1}: {pct(x)} %" for e, x in zip(ends, at_end)))
    print(f"interval score (width + {2 / (1 - pool.coverage):g} x years missed; lower is better; bandwidth "
          f"{pool.bandwidth:g}, spread_years {pool.spread_years:g}): {np.mean(scores):.3f} "
          f"(mean of {seeds} seeds; a group's years missed counted from its nearer end, as the fit does)")
    print("\nby band of predicted age (the fit has one per whole year, localised; these group them):")
    print("| predicted | faces | median width | covered % (groups: expected) | covered % (groups: overlap) "
          "| MAE | bucket % |\n|---|---|---|---|---|---|---|")
    band = np.searchsorted(AGE_EDGES, years, side="right")
    exact = ~groups
    bucket_ok = np.array([bucket_index(y) == bucket_index(a) for y, a in zip(years, pool.low)])
    edges = (0, *AGE_EDGES, 81)
    for b in range(len(AGE_EDGES) + 1):
        inside = band == b
        print(f"| {edges[b]:g}-{edges[b + 1]:g} | {inside.sum()} | {np.median(width[inside]):.0f} | "
              f"{pct(covered[inside])} | {pct(held.overlap[inside])} | "
              f"{np.abs(years - pool.low)[inside & exact].mean():.2f} | {pct(bucket_ok[inside & exact])} |")
    quartile = np.searchsorted(np.percentile(pool.spread, [25, 50, 75]), pool.spread)
    print(f"\nby quartile of the mirror spread (pooled quartiles; spread_years {pool.spread_years:g}): "
          "covered % (groups: expected, overlap) / median width")
    print("| folder | median spread | " + " | ".join(f"Q{q + 1}" for q in range(4)) + " |\n|---|---|---|---|---|---|")
    for source in dict.fromkeys(pool.source):
        mine = pool.source == source
        cells = [mine & (quartile == q) for q in range(4)]
        shown = [pct(covered[c]) + (f" ({pct(held.overlap[c])})" if groups[c].any() else "") for c in cells]
        print(f"| {source} | {np.median(pool.spread[mine]):.2f} y | "
              + " | ".join(f"{s} / {np.median(width[c]):.0f}" for s, c in zip(shown, cells)) + " |")
    wide = width > MAX_USEFUL_WIDTH
    for name, inside in ((f"wider than {MAX_USEFUL_WIDTH} y (age_uncertain)", wide),
                         (f"{CHILD_BELOW_YEARS:g}+ y, at most {MAX_USEFUL_WIDTH} y wide", ~wide & adult)):
        inside = inside & exact
        within5 = np.abs(np.floor(years + 0.5) - pool.low) <= 5
        print(f"{name}, exact ages: {inside.sum()} faces, MAE {np.abs(years - pool.low)[inside].mean():.2f}, "
              f"within ±5 y {pct(within5[inside])} %, bucket {pct(bucket_ok[inside])} %")

    header = ("| population | faces | in 80 % interval (groups: expected) | overlap / whole group | MAE "
              f"| median width | age_uncertain % | decided % ({ADULT_FROM}+) | decided right % |\n"
              "|---|---|---|---|---|---|---|---|---|")
    seed_rows = [population_rows(pool, *r, SETTINGS.min_gender_confidence) for r in runs]
    print("\nper population, cross-fitted over the pool (MAE: to the group's range where labels are groups; "
          "coverage: min-max over fold seeds)")
    print(header)
    for i, row in enumerate(seed_rows[0]):
        span = sorted(float(rows[i][2]) for rows in seed_rows if rows[i][2] != "-")
        print(f"| {row[0]} | {row[1]} | {row[2]} ({span[0]:.1f}-{span[-1]:.1f}) | " + " | ".join(row[3:]) + " |")
    gap = range_label_check(pool, low, high)
    held_out = np.char.add(np.char.add(pool.source, ":"), pool.race)
    print("\nper population, each folder x race group held out (scored with parameters fitted on every other one)")
    print(header)
    for row in population_rows(pool, *pool.cross_fit(held_out=held_out), SETTINGS.min_gender_confidence):
        print("| " + " | ".join(str(v) for v in row) + " |")
    print(f"\nstress test: the net reading one decade of exact ages {MISREAD_YEARS:g} years younger (predictions "
          "lowered when scored, not when fitted; spread unchanged): coverage in that decade, cross-fitted")
    print(misread_coverage(pool))
    if len(set(pool.source)) > 1:
        print("\nper population, each folder held out (scored with parameters fitted on the other folders)")
        print(header)
        _, low, high = folder_out = pool.cross_fit(held_out=pool.source)
        for row in population_rows(pool, *folder_out, SETTINGS.min_gender_confidence):
            print("| " + " | ".join(str(v) for v in row) + " |")
        range_label_check(pool, low, high, gap)
