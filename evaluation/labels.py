"""Labelled face folders (UTKFace format): `labels.csv` with file,age,gender[,race][,age_low,age_high].

`race` is a UTKFace code (0-4) or a group's name (FairFace's, evaluation/fairface_labels.py);
`age_low`/`age_high` give an age group's range where the label is a group, not an exact age.

Read by the evaluation, the raw-output cache and the dev tools; never shipped.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

GENDERS = ("female", "male")
# UTKFace's race codes, reported so the set's skin-tone mix and any gap stay visible.
RACES = {"0": "white", "1": "black", "2": "asian", "3": "indian", "4": "other"}


@dataclass(frozen=True)
class Label:
    """One row of labels.csv."""

    file: str
    age: float
    gender: str
    race: str | None = None  # RACES value (or the group's name), when labels.csv has the column
    age_low: float | None = None   # an age group's range (FairFace); None: the exact `age`
    age_high: float | None = None

    @property
    def low(self) -> float:
        return self.age if self.age_low is None else self.age_low

    @property
    def high(self) -> float:
        return self.age if self.age_high is None else self.age_high


def read_labels(folder: Path) -> list[Label]:
    """labels.csv of a UTKFace-format folder; SystemExit naming the problem if it is malformed."""
    path = folder / "labels.csv"
    if not path.is_file():
        raise SystemExit(f"no {path}: DATA must be a folder with labels.csv (file,age,gender[,race])")
    labels = []
    with open(path, newline="") as fh:
        for line, row in enumerate(csv.DictReader(fh), start=2):
            try:
                race = (row.get("race") or "").strip()
                low, high = row.get("age_low") or None, row.get("age_high") or None
                label = Label(row["file"], float(row["age"]), row["gender"].strip().lower(),
                              RACES.get(race, race.lower() or None),
                              None if low is None else float(low), None if high is None else float(high))
            except (KeyError, TypeError, ValueError):
                raise SystemExit(f"{path}:{line}: need file,age,gender with a numeric age") from None
            if label.gender not in GENDERS or label.age < 0:
                raise SystemExit(f"{path}:{line}: gender must be male/female and age >= 0")
            labels.append(label)
    if not labels:
        raise SystemExit(f"{path} has no rows")
    return labels
