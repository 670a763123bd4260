"""Every script in tools/ and evaluation/ runs its main path here, in a short mode: one run, a few requests,
a handful of faces. Their make targets run the long modes; this keeps a script that a change broke from
waiting for its next long run to say so (`--help` would only check the imports)."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import SHARED

ROOT = Path(__file__).resolve().parents[2]
UTKFACE = SHARED / "utkface-dev"


def run(*args: str, timeout: float = 300) -> str:
    """A script as its make target runs it, from the repo root; its stdout, or the failure with its stderr."""
    proc = subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "LOG_LEVEL": "WARNING"})
    assert proc.returncode == 0, f"{args[0]} exited {proc.returncode}:\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
    return proc.stdout


def utkface_subset(dest: Path, n: int, skip: int = 0) -> Path:
    """A folder whose labels.csv lists `n` faces of UTKFace-dev after its first `skip` (images linked, not copied)."""
    with open(UTKFACE / "labels.csv", newline="") as fh:
        rows = list(csv.reader(fh))
    dest.mkdir()
    with open(dest / "labels.csv", "w", newline="") as fh:
        csv.writer(fh).writerows([rows[0], *rows[1 + skip:1 + skip + n]])
    for entry in UTKFACE.iterdir():  # the images (in img/), linked whole
        if entry.name != "labels.csv":
            (dest / entry.name).symlink_to(entry, target_is_directory=entry.is_dir())
    return dest


def test_bench_workers_on_one_photo(tmp_path: Path) -> None:
    """`make bench`'s fresh-process workers, every mode once on the 1-face photo (main() adds more photos,
    the 12 and 48 MP ones, and more runs: minutes, not seconds)."""
    from tools import bench

    one = {"1 face 640x480": bench.make_images(tmp_path)["1 face 640x480"]}
    serve = bench.worker("serve", 1, one)
    assert serve["1 face 640x480"]["steady"] and serve["import_to_warmed_ms"] > 0
    assert bench.worker("bare", 1, one)["bare"]
    assert bench.worker("seed", 1, one)["seed_ms"]
    threads = bench.worker("threads", 1, one)
    assert threads["lock_rps"] > 0 and threads["clone_rps"] > 0
    big = bench.worker("big", 1, one, {"annotate": False, "detail": "fast"})
    assert big["big"]["faces"] == 1 and big["peak_rss_mb"] > 0


def test_loadtest_a_few_requests() -> None:
    out = run("tools/loadtest.py", "--requests", "8", "--concurrency", "2", "--no-12mp")
    assert "wrong" in out


def test_bench_backfill_a_few_images() -> None:
    out = run("tools/bench_backfill.py", "--images", "4", "--processes", "1")
    assert "images/s" in out


def test_bench_folder_two_phone_photos() -> None:
    """The folder form's throughput table: in-process, 1 job and 2 jobs over two 12 MP photos (no UTKFace)."""
    out = run("tools/bench_folder.py", "--faces", "0", "--phone", "2", "--jobs", "1", "2")
    assert "--jobs 2" in out and "2 phone photos, 12 MP" in out


def test_paired_bench_against_this_tree() -> None:
    """Issue 24's same-run ratios: one process per tree, one steady request per photo (the tree against itself)."""
    out = run("tools/paired_bench.py", str(ROOT), "--rounds", "1", "--steady", "1")
    assert "24 faces 12 MP" in out and "first portrait request / steady" in out


def test_fuzz_a_few_seconds() -> None:
    """atheris where installed (`make fuzz` installs it); otherwise the script's own hypothesis fallback,
    which drives the same two targets with the same checks."""
    run("tools/fuzz_atheris.py", "--seconds", "3", "--target", "both")


def test_fairface_labels(tmp_path: Path) -> None:
    src = tmp_path / "fairface"
    src.mkdir()
    for name in ("astronaut.png", "camera.png"):
        shutil.copy(ROOT / "tests" / "fixtures" / name, src / name)
    truth = [{"filename": "astronaut.png", "age": "30-39", "gender": "Female"},
             {"filename": "camera.png", "age": "70+", "gender": "Male"}]
    (src / "ground_truth.json").write_text(json.dumps(truth))
    run("evaluation/fairface_labels.py", str(src), str(tmp_path / "out"))
    rows = (tmp_path / "out" / "labels.csv").read_text().splitlines()
    assert rows == ["file,age,gender,age_low,age_high,race", "astronaut.png,34.5,female,30,39,",
                    "camera.png,77.0,male,70,100,"]
    assert (tmp_path / "out" / "camera.png").resolve() == (src / "camera.png").resolve()
    # --races replays the sample's pick (first N per age group x gender) over FairFace's training list.
    train = tmp_path / "train.csv"
    train.write_text("file,age,gender,race\ntrain/1.jpg,30-39,Female,East Asian\ntrain/2.jpg,30-39,Female,White\n"
                     "train/3.jpg,more than 70,Male,Indian\n")
    run("evaluation/fairface_labels.py", str(src), str(tmp_path / "raced"), "--races", str(train))
    rows = (tmp_path / "raced" / "labels.csv").read_text().splitlines()
    assert rows[1:] == ["astronaut.png,34.5,female,30,39,east_asian", "camera.png,77.0,male,70,100,indian"]


@pytest.mark.skipif(shutil.which("node") is None, reason="needs node (>= 18) to run face-api.js")
def test_agegender_reference_reproduces_the_recorded_outputs() -> None:
    """The recorder run again (the pinned npm tarball, under node) gives the outputs tests/data holds."""
    from evaluation import agegender_reference

    committed, again_path = agegender_reference.OUT, ROOT / "build" / "agegender_reference.json"
    agegender_reference.OUT = again_path  # under the root: main() prints it relative to it
    try:
        agegender_reference.main()
    finally:
        agegender_reference.OUT = committed
    again, recorded = json.loads(again_path.read_text()), json.loads(committed.read_text())
    assert again["cases"] == recorded["cases"]


@pytest.mark.shared
def test_calibrate_reports_on_a_few_faces(tmp_path: Path) -> None:
    """--report-only on two folders pooled (as `make calibrate DATA="a b"`): the cross-fitted tables, each
    folder held out, and models/calibration.json left alone."""
    before = (ROOT / "models" / "calibration.json").read_bytes()
    out = run("evaluation/calibrate.py", str(utkface_subset(tmp_path / "utk-a", 30)),
              str(utkface_subset(tmp_path / "utk-b", 30, skip=30)), "--report-only", "--seeds", "1")
    assert "ECE" in out and "| utk-b all | 30 |" in out and "each folder held out" in out
    assert (ROOT / "models" / "calibration.json").read_bytes() == before


@pytest.mark.shared
def test_group_recall_on_a_few_faces(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """In-process, on the 1 MP canvas at two face sizes (`make eval-groups` adds the 12 MP canvas and three
    more sizes: minutes); the face-free photos as they are."""
    from evaluation import group_recall

    monkeypatch.setattr(group_recall, "CANVASES", {"1 MP": group_recall.CANVASES["1 MP"]})
    monkeypatch.setattr(group_recall, "SIZES", (100, 250))
    report = group_recall.main([str(utkface_subset(tmp_path / "utk", 6)), "--json", str(tmp_path / "g.json")])
    assert [(r["canvas"], r["size"]) for r in report["rows"]] == [("1 MP", 100), ("1 MP", 250)]
    assert all(r["faces"] for r in report["rows"]) and report["face_free"]
    assert json.loads((tmp_path / "g.json").read_text()) == report
