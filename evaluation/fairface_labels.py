#!/usr/bin/env python3
"""Make a UTKFace-format folder (labels.csv + image links) from a FairFace sample with age groups.

    .venv/bin/python evaluation/fairface_labels.py SRC build/fairface
    .venv/bin/python evaluation/agegender_study.py build/fairface --fit-on ../shared/utkface-dev

SRC holds FairFace images and `ground_truth.json` ([{"filename", "age": "30-39", "gender": "Male"}]),
e.g. the `fairface/` folder of github.com/thlaiquid-ai/demographic-test-images (540 faces of
FairFace's training split, 30 per age group x gender, 448 px with FairFace's 1.25 margin; CC BY 4.0,
Kärkkäinen & Joo, WACV 2021). Get it with `git clone` (or the `fetch` tool); never commit its images.

FairFace labels are age groups, so labels.csv gets `age` = the group's midpoint plus `age_low` and
`age_high` (70+ is 70-100, midpoint 77): evaluation/agegender_study.py scores against the range.
No net we use lists FairFace among its training sets (face-api.js: UTK, FG-NET, ChaLearn, Wiki,
IMDB, CACD, MegaAge, MegaAge-Asian; the Cydral nets' data are not published).
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

GROUPS = {"0-2": (0, 2, 1.0), "3-9": (3, 9, 6.0), "10-19": (10, 19, 14.5), "20-29": (20, 29, 24.5),
          "30-39": (30, 39, 34.5), "40-49": (40, 49, 44.5), "50-59": (50, 59, 54.5), "60-69": (60, 69, 64.5),
          "70+": (70, 100, 77.0), "more than 70": (70, 100, 77.0)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("src", type=Path)
    ap.add_argument("dest", type=Path)
    args = ap.parse_args()
    rows = json.loads((args.src / "ground_truth.json").read_text())
    args.dest.mkdir(parents=True, exist_ok=True)
    with open(args.dest / "labels.csv", "w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(["file", "age", "gender", "age_low", "age_high"])
        for row in rows:
            low, high, mid = GROUPS[row["age"]]
            link = args.dest / row["filename"]
            if not link.exists():
                link.symlink_to((args.src / row["filename"]).resolve())
            out.writerow([row["filename"], mid, row["gender"].lower(), low, high])
    print(f"wrote {args.dest / 'labels.csv'}: {len(rows)} faces")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
