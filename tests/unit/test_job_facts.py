"""Job facts: one encoder and one decoder for every engine. A Batch Operations job's summary, read back
from the completion report, counts what the per-object summaries count: children, uncertain ages and
unclear faces included. The rows are made by the real label and resultString builders."""

from __future__ import annotations

from collections import Counter

import pytest

from bulk.batch_ops import summary_from_report_row
from handler import facts
from handler.batch import RESULT_STRING_LIMIT, JobSummary, batch_operations_result
from handler.calibration import load
from handler.config import SETTINGS
from handler.pipeline import Face, age_bucket, face_label, quality_issues
from handler.service import DEFAULT_OPTIONS

CALIBRATION = load(SETTINGS.model_dir)


def face(years: float, gender: str, *, width: int = 6, sharp: float = 0.9, analyzed: bool = True) -> Face:
    """An analysed face with the given age, gender and interval width, labelled by the real pipeline rules."""
    low = max(0, round(years) - width // 2)
    made = Face(raw_box=(10.0, 10.0, 110.0, 110.0), box={"x": 10, "y": 10, "width": 100, "height": 100},
                detection_confidence=0.99, inside=1.0, sharpness=sharp, analyzed=analyzed,
                gender={"value": gender, "confidence": 0.9},
                age={"years": years, "bucket": age_bucket(years),
                     "interval": {"low": low, "high": low + width, "coverage": 0.9}})
    made.issues = quality_issues(made, DEFAULT_OPTIONS, CALIBRATION) if analyzed else ["not_analyzed"]
    made.label = face_label(made, CALIBRATION)
    return made


CHILD = dict(years=5.0, gender="unknown")  # "Child, gender unclear, (4-6)"
UNCERTAIN = dict(years=55.0, gender="male", width=31)  # "Male, age uncertain (41-72)"-style
PHOTOS = {
    "child": [CHILD],
    "age uncertain": [UNCERTAIN],
    "family": [dict(years=30.0, gender="female"), dict(years=40.0, gender="male"), CHILD, UNCERTAIN,
               dict(years=33.0, gender="female", sharp=0.01)],  # the last is "Face unclear"
    "crowd of MAX_FACES": [dict(years=float(y), gender=g) for y in range(1, 101) for g in ("female",)][:100],
    "no face": [],
}


def summary_of(faces: list[Face]) -> dict:
    """The per-object summary the flow returns (storage_trigger.process_object), from the faces' result JSON."""
    result = {"faces_detected": len(faces), "faces": [f.public() for f in faces]}
    return {"key": "k", "status": "analyzed", "result": "r.json", **facts.from_result(result),
            "labels": [f.label for f in faces if f.analyzed]}


def test_the_labels_are_the_ones_the_issue_names() -> None:
    assert face(**CHILD).label == "Child, gender unclear, (4-6)"
    assert face(**UNCERTAIN).label.startswith("Male, age uncertain (")


@pytest.mark.parametrize("name", PHOTOS)
@pytest.mark.parametrize("unchanged", [False, True])
def test_a_report_row_counts_what_the_object_summary_counts(name: str, unchanged: bool) -> None:
    summary = summary_of([face(**spec) for spec in PHOTOS[name]])
    if unchanged:  # a re-run: the facts come back from the result's metadata, then into the resultString
        summary = {"key": "k", "status": "unchanged", "result": "r.json",
                   **facts.from_metadata(facts.to_metadata(summary))}
    code, text = batch_operations_result(summary)  # the real resultString builder
    assert code == "Succeeded" and len(text) <= RESULT_STRING_LIMIT
    row = ["in", "uploads/a.jpg", "", "succeeded", "200", "", text]
    direct, from_report = JobSummary(), JobSummary()
    direct.add(summary)
    from_report.add(summary_from_report_row(row))
    assert from_report.to_dict() == direct.to_dict()
    assert sum(from_report.genders.values()) == sum(1 for spec in PHOTOS[name])  # every analysed face counted


def test_text_and_metadata_round_trip() -> None:
    sample = {"faces": 4, "genders": ["female", "unknown", "male", "female"],
              "age_buckets": ["(25-32)", "(4-6)", "(48-53)", "(25-32)"]}
    for decoded in (facts.from_text(facts.to_text(sample)), facts.from_metadata(facts.to_metadata(sample))):
        assert decoded["faces"] == 4
        assert Counter(decoded["genders"]) == Counter(sample["genders"])
        assert Counter(decoded["age_buckets"]) == Counter(sample["age_buckets"])
    assert facts.from_text("invalid_image") is None
    assert facts.from_text("0 faces") == {"faces": 0, "genders": [], "age_buckets": []}
