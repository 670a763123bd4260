#!/usr/bin/env python3
"""Fit the gender and age calibration on labelled folders, pooled; write models/calibration.json and pin it.

    make calibrate DATA="../shared/utkface-dev build/fairface"
    = .venv/bin/python evaluation/calibrate.py ../shared/utkface-dev build/fairface

Runs the pipeline's detection and attribute nets once over each folder (cached in
build/), pools their faces, then:
  1. cross-fits (K folds over the pool: every figure printed comes from folds that did
     not fit it) and prints ECE, accuracy per confidence band, the gender threshold table,
     age coverage, width and the interval score (what --bandwidth was chosen by) per band
     of predicted age, and per population (each folder,
     each of its age bands and race groups): coverage, MAE, width, age_uncertain share,
     gender decided share and accuracy; then the same with each population held out
     (each folder x race group scored by parameters fitted on every other one);
  2. fits the shipped parameters on every face, writes models/calibration.json with
     the data and command that produced them and the sha256 of the nets they fit, and
     pins the file's size and sha256 in models/manifest.json (checked at start-up).
A folder labelled with age groups (`age_low,age_high`, e.g. FairFace's) is fitted by overlap (an
interval that reaches the group covers it, fitting.conformal_quantiles) and reported by the share
of the group's years the interval holds, its expected coverage if ages are spread evenly in the
group, beside overlap and holding the whole group (evaluation/range_coverage.py); exact ages
bucketed into FairFace's groups check that estimate against the exact coverage.
Re-run it whenever a net, the chips or detection change: start-up refuses a
calibration fitted for other nets.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import math
import os
import re
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script (make calibrate): evaluation/ is the path's first entry
    sys.path.insert(0, str(ROOT))
MODELS = ROOT / "models"

from evaluation.calibration_pool import (  # noqa: E402  (after the path above)
    BANDWIDTH,
    CHILD_BELOW_YEARS,
    COVERAGE,
    MAX_USEFUL_WIDTH,
    SPREAD_YEARS,
    Pool,
    pool,
)
from evaluation.calibration_report import report  # noqa: E402

if TYPE_CHECKING:  # importing handler loads the nets: done in main(), after MODEL_DIR is set
    from evaluation.face_dump import Dump


def uncalibrated_model_dir(into: Path) -> Path:
    """A model folder with the real weights and an identity calibration.

    Importing `handler` loads the nets and refuses a missing or stale calibration;
    fitting one must not need one, so the nets are loaded from this folder instead.
    """
    manifest = json.loads((MODELS / "manifest.json").read_text())
    for net in manifest["nets"].values():
        for f in net["files"].values():
            (into / f["name"]).symlink_to(MODELS / f["name"])
    identity = {"fitted_for": fitted_for(manifest), "gender": {"a": 1.0, "b": 0.0},
                "age": {"coverage": 0.0, "edges": [], "quantiles": [[0.0, 0.0]]},
                "rules": {"child_below_years": 0.0, "max_useful_width": 1000}}
    raw = json.dumps(identity).encode()
    (into / "calibration.json").write_bytes(raw)
    manifest["calibration"] = {"name": "calibration.json", "bytes": len(raw), "sha256": hashlib.sha256(raw).hexdigest()}
    (into / "manifest.json").write_text(json.dumps(manifest))
    return into


def fitted_for(manifest: dict) -> dict:
    """The sha256 of each file of every net in the manifest (start-up checks those calibration.FITTED_NETS names)."""
    return {key: {role: f["sha256"] for role, f in net["files"].items()} for key, net in manifest["nets"].items()}


def write(pool: Pool, dumps: dict[str, Dump], folders: list[Path], model_dir: Path) -> Path:
    """Fit on every found face of every folder; write calibration.json and pin it in the manifest."""
    from evaluation import fitting
    from evaluation.scoring import decade
    from handler import calibration

    gender = fitting.fit_platt(pool.p_male, pool.is_male)
    age = fitting.fit_intervals(pool.years, pool.low, pool.coverage, pool.bandwidth, ages_high=pool.high,
                                spread=pool.spread, spread_years=pool.spread_years)
    manifest_path = model_dir / "manifest.json"
    manifest = json.loads(manifest_path.read_text())

    def folder_entry(folder: Path) -> dict:
        dump = dumps[folder.resolve().name]
        labels = [lab for lab, f in zip(dump.labels, dump.found) if f]
        ranges = Counter(f"{lab.low:g}-{lab.high:g}" for lab in labels if lab.low != lab.high)
        return {"folder": folder.resolve().name,
                "labels_sha256": hashlib.sha256((folder / "labels.csv").read_bytes()).hexdigest(),
                "faces": len(labels),
                "make_up": {"gender": dict(Counter(lab.gender for lab in labels)),
                            "age": dict(ranges) if ranges else dict(Counter(decade(lab.age) for lab in labels)),
                            "race": dict(Counter(lab.race or "unlabelled" for lab in labels))}}

    shown = " ".join(str(f) if not f.is_absolute() else ".../" + f.name for f in folders)
    data = {
        "about": "Fitted by evaluation/calibrate.py; do not edit by hand (the manifest pins this file's sha256).",
        "command": f'make calibrate DATA="{shown}"',
        "data": {
            "folders": [folder_entry(f) for f in folders],
            "faces": len(pool.years),
            "note": "Pooled from these folders (e.g. UTKFace's aligned, frontal, well-lit crops and FairFace's "
                    "in-the-wild photos of seven race groups); holds for faces like these, not for every population.",
        },
        "fitted_for": fitted_for(manifest),
        "gender": {"method": "Platt scaling of the net's log-odds of male", "a": round(gender.a, 6),
                   "b": round(gender.b, 6)},
        "age": {"method": "localised split-conformal residual quantiles, one pair per whole year of predicted "
                          "age (faces weighted by a Gaussian of the distance between log(1 + predicted ages), sd "
                          "bandwidth), each residual divided by 1 + mirror spread / spread_years",
                "coverage": pool.coverage,
                "bandwidth": pool.bandwidth if math.isfinite(pool.bandwidth) else None,
                "spread_years": pool.spread_years if math.isfinite(pool.spread_years) else None,
                "edges": list(age.edges),
                "quantiles": [[round(lo, 4), round(hi, 4)] for lo, hi in age.quantiles]},
        "rules": {"child_below_years": CHILD_BELOW_YEARS, "max_useful_width": MAX_USEFUL_WIDTH},
    }
    path = model_dir / calibration.FILE_NAME
    raw = (json.dumps(data, indent=1) + "\n").encode()
    path.write_bytes(raw)
    pin = json.dumps({"name": calibration.FILE_NAME, "bytes": len(raw), "sha256": hashlib.sha256(raw).hexdigest()})
    # Edit the one line, leaving the rest of the manifest's hand-kept layout alone.
    text = manifest_path.read_text()
    line = re.compile(r'^ "calibration": \{.*\},$', re.M)
    if line.search(text):
        text = line.sub(lambda _: f' "calibration": {pin},', text)
    else:
        text = text.replace('\n "packages": {', f'\n "calibration": {pin},\n "packages": {{', 1)
    manifest_path.write_text(text)
    calibration.load(model_dir)  # the check start-up will run
    return path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data", type=Path, nargs="+",
                    help="UTKFace-format folders (labels.csv with file,age,gender[,race][,age_low,age_high])")
    ap.add_argument("--seeds", type=int, default=5, help="fold assignments to report the spread over")
    ap.add_argument("--report-only", action="store_true", help="print the cross-fitted tables, write nothing")
    ap.add_argument("--spread-years", type=float, default=SPREAD_YEARS,
                    help="mirror spread that doubles an interval (inf: one width per predicted age)")
    ap.add_argument("--bandwidth", type=float, default=BANDWIDTH,
                    help="sd of the Gaussian over log(1 + predicted age) that lends a face its neighbours' "
                         "residuals (inf: one width for every age)")
    ap.add_argument("--coverage", type=float, default=COVERAGE,
                    help="the share of faces each interval should hold (what the answer's age.interval.coverage says)")
    args = ap.parse_args()
    if not 0 < args.coverage < 1:
        ap.error("--coverage must be between 0 and 1")
    if not args.spread_years > 0 or not args.bandwidth > 0:
        ap.error("--spread-years and --bandwidth must be > 0 (inf for a fixed width)")
    if len({f.resolve().name for f in args.data}) != len(args.data):
        ap.error("the folders need different names (the report and calibration.json name them)")
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["MODEL_DIR"] = str(uncalibrated_model_dir(Path(tmp)))
        from evaluation import face_dump

        dumps = {f.resolve().name: face_dump.load(f) for f in args.data}
        faces = dataclasses.replace(pool(dumps), spread_years=args.spread_years, bandwidth=args.bandwidth,
                                    coverage=args.coverage)
        report(faces, args.seeds)  # imports handler, whose nets load from the uncalibrated folder
        if not args.report_only:
            path = write(faces, dumps, args.data, MODELS)
            print(f"\nwrote {path.relative_to(ROOT)} and pinned it in models/manifest.json")


if __name__ == "__main__":
    main()
