"""The folder form's pure parts on real files: which photos a run takes, the results file it resumes from,
the CSV rows, the plain progress line. (The whole command, with real nets: integration/test_folder.py.)"""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from bulk.photos import NotFound, find_photos
from bulk.progress import Progress
from bulk.results import CSV_COLUMNS, LineWriter, face_rows, read_results


def touch(root: Path, *names: str) -> None:
    for name in names:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(b"x")


def test_a_run_takes_image_files_once_sorted_without_hidden_ones_or_its_own_output(tmp_path: Path) -> None:
    touch(tmp_path, "in/b.JPG", "in/a/c.heic", "in/a/d.txt", "in/.cache/e.jpg", "in/.f.png", "in/drawn/g.jpg",
          "loose.bin")
    photos = find_photos([str(tmp_path / "in"), str(tmp_path / "in/*.JPG"), str(tmp_path / "loose.bin")],
                         tmp_path, skip=tmp_path / "in/drawn")
    assert [p.key for p in photos] == ["in/a/c.heic", "in/b.JPG", "loose.bin"]  # a file named is taken as is
    assert [p.mirror for p in photos] == ["in/a/c.heic", "in/b.JPG", "loose.bin"]  # below the common folder
    assert find_photos([str(tmp_path / "in")], tmp_path / "elsewhere")[0].key == str(tmp_path / "in/a/c.heic")
    assert find_photos([str(tmp_path / "in")], tmp_path)[0].mirror == "a/c.heic"
    with pytest.raises(NotFound):
        find_photos([str(tmp_path / "in"), str(tmp_path / "nope/*.jpg")], tmp_path)


def test_the_results_file_loses_only_its_torn_last_line(tmp_path: Path) -> None:
    jsonl = tmp_path / "r.jsonl"
    writer = LineWriter(jsonl)
    for line in ({"path": "a.jpg", "size": 1}, {"path": "b.jpg", "size": 2}, {"path": "a.jpg", "size": 3}):
        writer.write(line)
    writer.close()
    whole = jsonl.read_bytes()
    jsonl.write_bytes(whole + b'{"path": "c.j')
    assert read_results(jsonl) == {"a.jpg": {"path": "a.jpg", "size": 3}, "b.jpg": {"path": "b.jpg", "size": 2}}
    assert jsonl.read_bytes() == whole  # the next line appended starts on a line of its own
    assert read_results(tmp_path / "none.jsonl") == {}


def test_a_csv_row_per_face_with_empty_cells_for_a_face_not_analysed() -> None:
    analysed = {"box": {"x": 1, "y": 2, "width": 3, "height": 4}, "detection_confidence": 0.9, "rank": 1,
                "gender": {"value": "male", "confidence": 0.95}, "label": "Male, (25-32)",
                "age": {"years": 30.1, "bucket": "(25-32)", "interval": {"low": 25, "high": 38, "coverage": 0.8}},
                "quality": {"ok": True, "issues": []}}
    beyond = {**analysed, "rank": 2, "gender": None, "age": None, "label": "Not analysed (face limit)",
              "quality": {"ok": False, "issues": ["too_small", "not_analyzed"]}}
    rows = list(face_rows({"path": "p.jpg", "faces": [analysed, beyond]}))
    assert [dict(zip(CSV_COLUMNS, row)) for row in rows] == [
        {"path": "p.jpg", "face": 1, "x": 1, "y": 2, "width": 3, "height": 4, "detection_confidence": 0.9,
         "gender": "male", "gender_confidence": 0.95, "age": 30.1, "age_low": 25, "age_high": 38,
         "age_bucket": "(25-32)", "quality": "ok", "label": "Male, (25-32)"},
        {"path": "p.jpg", "face": 2, "x": 1, "y": 2, "width": 3, "height": 4, "detection_confidence": 0.9,
         "gender": None, "gender_confidence": None, "age": None, "age_low": None, "age_high": None,
         "age_bucket": None, "quality": "too_small not_analyzed", "label": "Not analysed (face limit)"}]
    assert list(face_rows({"path": "bad.jpg", "error": {"code": "invalid_image"}})) == []


def test_off_a_terminal_progress_is_plain_lines_never_a_bar() -> None:
    stream = io.StringIO()
    progress = Progress(4, stream)
    progress.update(2)
    progress.close()
    assert stream.getvalue() == ""  # the first plain line comes after PLAIN_EVERY_S
    assert progress.line().startswith("1/4 photos, ") and progress.line().endswith(", 2 faces so far")
