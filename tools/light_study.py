#!/usr/bin/env python3
"""Light and old scans: how found rate, gender and age degrade on darker, brighter, flatter, grey and sepia faces.

    .venv/bin/python tools/light_study.py ../shared/utkface-dev [--step 2]

Each synthetic transform (evaluation.face_dump.TRANSFORMS) is applied to every `step`-th
labelled photo before the border; detection and the attribute nets run once per
transform (cached in build/). The shipped calibration turns the raw outputs into
answers. Printed: one row per transform, then every transformed face pooled and
binned by the face box's mean luma and by its contrast (luma standard deviation),
which is what the `underexposed`, `overexposed` and `low_contrast` thresholds in
handler/readout.py were chosen from.
"""

from __future__ import annotations

import argparse
import itertools
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # importing handler loads the nets: done in main()
    from evaluation.face_dump import Dump
    from handler.calibration import Calibration

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def scores(dump: Dump, calibration: Calibration, min_gender_confidence: float) -> dict[str, np.ndarray]:
    """Per found face: luma, contrast, gender right, decided, decided right, |age error|, covered."""
    from evaluation import fitting

    found = dump.found
    raw = dump.p_male[found]
    years = dump.years[found]
    ages, is_male = dump.ages[found], dump.is_male[found]
    p_male = calibration.gender.p_male(raw)
    confidence = np.maximum(p_male, 1 - p_male)
    right = (p_male >= 0.5) == is_male
    decided = (confidence >= min_gender_confidence) & (years >= calibration.child_below_years)
    low, high = fitting.intervals_of(calibration.age, years, dump.mirror_spread[found]).T
    return {"luma": dump.luminance[found], "contrast": dump.contrast[found], "right": right, "decided": decided,
            "error": np.abs(years - ages), "covered": (ages >= low) & (ages <= high)}


def row(name: str, s: dict[str, np.ndarray], n_images: int | None = None) -> str:
    n = len(s["right"])
    found = f"{100 * n / n_images:.1f} % | " if n_images else ""
    if not n:
        return f"| {name} | {found}0 | - | - | - | - | - |"
    decided = s["decided"]
    decided_right = f"{100 * s['right'][decided].mean():.1f}" if decided.any() else "-"
    return (f"| {name} | {found}{n} | {100 * s['right'].mean():.1f} % | {decided_right} % / "
            f"{100 * (1 - decided.mean()):.1f} % | {s['error'].mean():.2f} | {100 * s['covered'].mean():.1f} % | "
            f"{np.median(s['luma']):.0f} / {np.median(s['contrast']):.0f} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data", type=Path)
    ap.add_argument("--step", type=int, default=2, help="every k-th labelled photo (2: 540 of UTKFace-dev's 1,080)")
    args = ap.parse_args()
    from evaluation import face_dump
    from handler import runtime
    from handler.config import SETTINGS

    calibration = runtime.get_models().calibration
    results = {}
    for name in face_dump.TRANSFORMS:
        # The untransformed photos are the calibration's own dump, so no second pass for them.
        dump = face_dump.load(args.data).every(args.step) if name == "none" else face_dump.load(args.data, name,
                                                                                               step=args.step)
        results[name] = (len(dump.labels), scores(dump, calibration, SETTINGS.min_gender_confidence))
    head = ("| {} | found | faces | gender (argmax) | decided correct / unknown | age MAE | in 80 % interval "
            "| face luma / contrast (median) |\n|---|---|---|---|---|---|---|---|")
    print(head.format("transform"))
    for name, (n, s) in results.items():
        print(row(name, s, n))
    pooled = {k: np.concatenate([s[k] for _, s in results.values()]) for k in results["none"][1]}
    from handler.readout import LOW_CONTRAST_BELOW, OVEREXPOSED_FROM, UNDEREXPOSED_BELOW

    def flagged(s: dict[str, np.ndarray]) -> np.ndarray:
        return (s["luma"] < UNDEREXPOSED_BELOW) | (s["luma"] >= OVEREXPOSED_FROM) | (s["contrast"] < LOW_CONTRAST_BELOW)

    print(f"\nflagged (luma < {UNDEREXPOSED_BELOW:g}, >= {OVEREXPOSED_FROM:g} or contrast < {LOW_CONTRAST_BELOW:g}):")
    print(head.replace(" found |", "").replace("|---|---|---|---|---|---|---|---|",
                                               "|---|---|---|---|---|---|---|").format("faces"))
    for name, (_, s) in results.items():
        flags = flagged(s)
        print(row(f"{name}, flagged ({100 * flags.mean():.1f} %)", {k: v[flags] for k, v in s.items()}))
    flags = flagged(pooled)
    print(row("all transforms, flagged", {k: v[flags] for k, v in pooled.items()}))
    print(row("all transforms, not flagged", {k: v[~flags] for k, v in pooled.items()}))
    full = face_dump.load(args.data)
    races = np.array([lab.race for lab in full.labels])[full.found]
    natural = flagged({"luma": full.luminance[full.found], "contrast": full.contrast[full.found]})
    print("untransformed faces flagged, by race: " + ", ".join(
        f"{race} {natural[races == race].sum()}/{(races == race).sum()}" for race in dict.fromkeys(races)))
    for key, edges in (("luma", (0, 30, 40, 45, 50, 60, 80, 100, 160, 190, 200, 210, 215, 220, 225, 240, 256)),
                       ("contrast", (0, 10, 15, 20, 25, 30, 40, 200))):
        print("\n" + head.replace(" found |", "").replace("|---|---|---|---|---|---|---|---|",
                                                           "|---|---|---|---|---|---|---|").format(f"face {key}"))
        for lo, hi in itertools.pairwise(edges):
            inside = (pooled[key] >= lo) & (pooled[key] < hi)
            print(row(f"{lo}-{hi}", {k: v[inside] for k, v in pooled.items()}))


if __name__ == "__main__":
    main()
