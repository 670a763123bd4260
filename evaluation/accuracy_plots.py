"""`evaluate --plots`: the reliability diagram, interval coverage by decade, predicted against true age."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from evaluation import range_coverage
from evaluation.fitting import expected_calibration_error
from evaluation.labels import Label
from evaluation.scoring import Calibrated, age_band, band_start


def write_plots(folder: Path, labels: list[Label], ours: Calibrated) -> list[Path]:
    """PNG plots: reliability diagram, interval coverage by decade, predicted against true age."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    pairs = [(lab, p, r) for lab, p, r in zip(labels, ours.predictions, ours.raw_p_male) if p.found]
    is_male = np.array([lab.gender == "male" for lab, _, _ in pairs])
    raw = np.array([r for _, _, r in pairs])
    answers = {"net's softmax (uncalibrated)": (np.maximum(raw, 1 - raw), (raw >= 0.5) == is_male),
               "calibrated": (np.array([p.gender_confidence for _, p, _ in pairs]),
                              np.array([p.gender == lab.gender for lab, p, _ in pairs]))}
    paths = []
    fig, ax = plt.subplots(figsize=(4.2, 4.2), dpi=100)
    ax.plot([0.5, 1], [0.5, 1], color="grey", lw=1, ls="--", label="perfect calibration")
    edges = np.linspace(0.5, 1, 11)
    for (name, (conf, correct)), marker in zip(answers.items(), "os"):
        which = np.clip(np.digitize(conf, edges[1:-1]), 0, 9)
        xs = [conf[which == b].mean() for b in range(10) if (which == b).sum() >= 5]
        ys = [correct[which == b].mean() for b in range(10) if (which == b).sum() >= 5]
        ece = expected_calibration_error(conf, correct)
        ax.plot(xs, ys, marker=marker, label=f"{name}, ECE {ece:.3f}")
    ax.set(xlabel="reported confidence (bins with >= 5 faces)", ylabel="fraction correct", xlim=(0.5, 1),
           ylim=(0.3, 1.01), title="Gender: reliability")
    ax.legend(fontsize=7, loc="lower right")
    paths.append(_save(fig, folder / "reliability.png"))

    # An age group's share of years inside the interval (its expected coverage; exact ages: held or not).
    share = range_coverage.coverage(*np.array([(p.low, p.high, lab.low, lab.high) for lab, p, _ in pairs]).T).expected
    covered = share > 0   # the scatter's colour: some of the label inside the interval
    width = np.array([p.high - p.low for _, p, _ in pairs])
    dec = np.array([age_band(lab.low, lab.high) for lab, _, _ in pairs])
    present = sorted(set(dec), key=band_start)
    fig, ax = plt.subplots(figsize=(6, 3.4), dpi=100)
    ax.axhspan(70, 90, color="tab:green", alpha=0.12, label="target 80 % ± 10")
    ax.axhline(80, color="tab:green", lw=1)
    bars = ax.bar(present, [100 * share[dec == d].mean() for d in present], color="tab:blue")
    for bar, d in zip(bars, present):
        ax.annotate(f"{np.median(width[dec == d]):.0f} y", (bar.get_x() + bar.get_width() / 2, 3), ha="center",
                    color="white", fontsize=7)
    ax.set(ylim=(0, 100), ylabel="true age inside interval (%)",
           xlabel="true age or group (groups: expected coverage); in the bars: median width",
           title=f"Age interval (80 %): coverage {100 * share.mean():.1f} % overall")
    ax.legend(fontsize=7, loc="lower right")
    paths.append(_save(fig, folder / "coverage_by_decade.png"))

    ages = np.array([lab.age for lab, _, _ in pairs])
    years = np.array([p.years for _, p, _ in pairs])
    fig, ax = plt.subplots(figsize=(4.6, 4.6), dpi=100)
    # x = prediction, so each face's interval is a vertical line through its own point.
    ax.vlines(years, [p.low for _, p, _ in pairs], [p.high for _, p, _ in pairs], color="tab:blue", alpha=0.05, lw=1)
    ax.scatter(years[covered], ages[covered], s=4, color="tab:blue", label="inside its 80 % interval (faint line)")
    ax.scatter(years[~covered], ages[~covered], s=5, color="tab:red", label="outside it")
    top = max(100, ages.max())
    ax.plot([0, top], [0, top], color="grey", lw=1, ls="--", label="true = predicted")
    ax.set(xlabel="predicted age (years)", ylabel="true age", xlim=(0, 85), ylim=(0, top),
           title="Age: true against predicted")
    ax.legend(fontsize=7, loc="upper left")
    paths.append(_save(fig, folder / "predicted_vs_true_age.png"))
    return paths


def _save(fig: object, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path)
    import matplotlib.pyplot as plt

    plt.close(fig)
    return path
