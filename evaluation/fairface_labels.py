#!/usr/bin/env python3
"""Make a UTKFace-format folder (labels.csv + image links) from a FairFace sample with age groups.

    .venv/bin/python evaluation/fairface_labels.py SRC build/fairface [--races fairface_label_train.csv]
    make calibrate DATA="../shared/utkface-dev build/fairface" CALIBRATE_ARGS=--report-only

SRC holds FairFace images and `ground_truth.json` ([{"filename", "age": "30-39", "gender": "Male"}]),
e.g. the `fairface/` folder of github.com/thlaiquid-ai/demographic-test-images (540 faces of
FairFace's training split, 30 per age group x gender, 448 px with FairFace's 1.25 margin; CC BY 4.0,
Kärkkäinen & Joo, WACV 2021). Get it with `git clone` (or the `fetch` tool); never commit its images.

FairFace labels are age groups, so labels.csv gets `age` = the group's midpoint plus `age_low` and
`age_high` (70+ is 70-100, midpoint 77): evaluation/calibrate.py fits and scores against the range
(its expected coverage takes 70+ as 70-89, evaluation/range_coverage.py).
`--races` adds each face's race group (FairFace's seven: White, Black, Latino_Hispanic, East Asian,
Southeast Asian, Indian, Middle Eastern) from FairFace's own `fairface_label_train.csv` (the file,
age, gender, race list of its training split; CC BY 4.0, e.g. in a public repository that mirrors it):
that sample's download script took the first 30 faces per age group x gender in the training split's
order, so replaying that pick over the list names every face; the tool refuses if the replayed
sequence of age groups and genders differs from ground_truth.json's anywhere.
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
# Spreadsheet-mangled group names in some copies of FairFace's label list.
MANGLED = {"9-Mar": "3-9", "19-Oct": "10-19", "more than 70": "70+"}


def races_by_pick(rows: list[dict], train_csv: Path) -> list[str]:
    """Each sample face's race: replay 'first N per (age group, gender) in training order' over the list."""
    per_group = len(rows) // len({(r["age"], r["gender"]) for r in rows})
    counts: dict[tuple[str, str], int] = {}
    races = []
    with open(train_csv, newline="") as fh:
        for entry in csv.DictReader(fh):
            key = (MANGLED.get(entry["age"], entry["age"]), entry["gender"])
            if counts.get(key, 0) >= per_group:
                continue
            counts[key] = counts.get(key, 0) + 1
            if len(races) == len(rows):
                break
            want = (MANGLED.get(rows[len(races)]["age"], rows[len(races)]["age"]), rows[len(races)]["gender"])
            if key != want:
                raise SystemExit(f"{train_csv}: pick {len(races) + 1} is {key}, ground_truth.json says {want}: "
                                 "not the list this sample was drawn from")
            races.append(entry["race"])
    if len(races) != len(rows):
        raise SystemExit(f"{train_csv}: the replayed pick ran out after {len(races)} faces")
    return races


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("src", type=Path)
    ap.add_argument("dest", type=Path)
    ap.add_argument("--races", type=Path, help="FairFace's fairface_label_train.csv, to add each face's race")
    args = ap.parse_args()
    rows = json.loads((args.src / "ground_truth.json").read_text())
    races = races_by_pick(rows, args.races) if args.races else [""] * len(rows)
    args.dest.mkdir(parents=True, exist_ok=True)
    with open(args.dest / "labels.csv", "w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(["file", "age", "gender", "age_low", "age_high", "race"])
        for row, race in zip(rows, races):
            low, high, mid = GROUPS[row["age"]]
            link = args.dest / row["filename"]
            if not link.exists():
                link.symlink_to((args.src / row["filename"]).resolve())
            out.writerow([row["filename"], mid, row["gender"].lower(), low, high, race.replace(" ", "_").lower()])
    print(f"wrote {args.dest / 'labels.csv'}: {len(rows)} faces")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
