"""`python -m handler FOLDER...` as a user runs it: real subprocesses, real nets, real photos in a real tree.

A nested folder with a text file named .jpg, a truncated JPEG and an AVIF; the JSON Lines, the CSV and
the mirrored images; a second run that skips everything; runs stopped by Ctrl-C and by SIGKILL (a torn
last line included) and restarted, ending with each photo exactly once.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
from helpers import fixture_bytes, fixture_image
from procfs import children, cmdline

ROOT = Path(__file__).resolve().parents[2]


def handler(cwd: Path, *args: str, **popen) -> subprocess.Popen:
    """`python -m handler ARGS` from `cwd` (not the repository), as someone with a folder of photos runs it."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "LOG_LEVEL": "WARNING"}
    return subprocess.Popen([sys.executable, "-m", "handler", *args], cwd=cwd, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **popen)


def finish(proc: subprocess.Popen) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=300)
    return proc.returncode, out, err


def lines(jsonl: Path) -> list[dict]:
    return [json.loads(raw) for raw in jsonl.read_text().splitlines()]


def tree(root: Path) -> None:
    """photos/ with nested folders, two bad files, an AVIF, and files a walk must leave out."""
    group = fixture_bytes("group6.jpg")
    for rel, data in {
        "camera.png": fixture_bytes("camera.png"),
        "trips/2019/group6.jpg": group,
        "trips/2019/beach/astronaut.avif": cv2.imencode(".avif", fixture_image("astronaut.png"))[1].tobytes(),
        "trips/notes.jpg": b"shopping list: milk, eggs\n",
        "trips/2020/cut.jpg": group[: len(group) // 2],
        "trips/readme.txt": b"not a photo, not listed",
        ".thumbnails/camera.jpg": group,
    }.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)


def test_a_nested_folder_gives_one_line_per_photo_a_row_per_face_and_mirrored_images(tmp_path: Path) -> None:
    tree(tmp_path / "photos")
    # the folder and a quoted glob naming some of its photos again: each photo once
    code, out, err = finish(handler(tmp_path, "photos", "photos/**/*.jpg", "--csv", "faces.csv",
                                    "--out-dir", "drawn", "--jobs", "2", "--max-faces", "5"))
    assert code == 1, err  # two photos failed
    results = lines(tmp_path / "faceread.jsonl")
    assert [r["path"] for r in results] == ["photos/camera.png", "photos/trips/2019/beach/astronaut.avif",
                                            "photos/trips/2019/group6.jpg", "photos/trips/2020/cut.jpg",
                                            "photos/trips/notes.jpg"]
    by_path = {r["path"]: r for r in results}
    assert by_path["photos/trips/notes.jpg"]["error"]["code"] == "invalid_image"
    assert by_path["photos/trips/2020/cut.jpg"]["error"] == {
        "code": "invalid_image", "message": "truncated JPEG: the end of the image is missing"}
    assert by_path["photos/trips/2019/beach/astronaut.avif"]["faces"][0]["gender"]["value"] == "female"
    group = by_path["photos/trips/2019/group6.jpg"]
    assert group["faces_detected"] == 6 and group["faces_analyzed"] == 5  # --max-faces as for one photo
    assert group["size"] == (tmp_path / "photos/trips/2019/group6.jpg").stat().st_size
    summary = json.loads(out)
    assert (summary["photos"], summary["done"], summary["failed"], summary["skipped"]) == (5, 5, 2, 0)

    with open(tmp_path / "faces.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == sum(len(r.get("faces", [])) for r in results) == 8
    assert [(r["path"], r["face"]) for r in rows if r["path"].endswith("group6.jpg")] == [
        ("photos/trips/2019/group6.jpg", str(rank)) for rank in range(1, 7)]
    camera = next(r for r in rows if r["path"] == "photos/camera.png")
    assert camera["gender"] == "male" and camera["age_bucket"] and camera["label"].startswith("Male")
    assert "not_analyzed" in next(r for r in rows if r["face"] == "6")["quality"]

    drawn = sorted(p.relative_to(tmp_path / "drawn").as_posix() for p in (tmp_path / "drawn").rglob("*"))
    assert drawn == ["camera.png.annotated.jpg", "trips", "trips/2019", "trips/2019/beach",
                     "trips/2019/beach/astronaut.avif.annotated.jpg", "trips/2019/group6.jpg.annotated.jpg"]

    before = (tmp_path / "faceread.jsonl").read_bytes()
    code, out, err = finish(handler(tmp_path, "photos", "--csv", "faces.csv", "--out-dir", "drawn"))
    assert code == 1  # the same two photos are still failed ones
    assert "5 skipped (already in faceread.jsonl)" in err
    assert json.loads(out)["done"] == 0
    assert (tmp_path / "faceread.jsonl").read_bytes() == before
    assert len(list(csv.DictReader(open(tmp_path / "faces.csv", newline="")))) == 8


def wait_for_lines(jsonl: Path, count: int, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + 240
    while not (jsonl.exists() and jsonl.read_text().count("\n") >= count):
        assert proc.poll() is None, "the run ended before it could be stopped"
        assert time.monotonic() < deadline
        time.sleep(0.05)


def fourteen_photos(photos: Path) -> None:
    for i in range(14):
        name = ("camera.png", "astronaut.png", "coffee.png")[i % 3]
        (photos / f"part{i % 2}").mkdir(parents=True, exist_ok=True)
        (photos / f"part{i % 2}" / f"{i:02d}-{name}").write_bytes(fixture_bytes(name))


def workers(pid: int) -> list[int]:
    """The analysing processes a run spawned (not multiprocessing's resource tracker)."""
    return [child for child in children(pid) if any("spawn_main" in part for part in cmdline(child))]


def test_a_worker_that_dies_costs_the_run_nothing(tmp_path: Path) -> None:
    """A native crash or the OOM killer takes a worker: its photos are redone and the run goes on."""
    fourteen_photos(tmp_path / "photos")
    run = handler(tmp_path, "photos", "--jobs", "2")
    wait_for_lines(tmp_path / "faceread.jsonl", 2, run)
    os.kill(workers(run.pid)[0], signal.SIGKILL)
    code, out, err = finish(run)
    assert code == 0, err
    paths = [r["path"] for r in lines(tmp_path / "faceread.jsonl")]
    assert paths == sorted(paths) and len(set(paths)) == 14 and json.loads(out)["failed"] == 0


def test_stopped_and_killed_runs_resume_to_each_photo_exactly_once(tmp_path: Path) -> None:
    photos = tmp_path / "photos"
    fourteen_photos(photos)
    jsonl = tmp_path / "faceread.jsonl"

    # Ctrl-C: the run stops between photos, says so, and leaves whole lines
    run = handler(tmp_path, "photos", "--jobs", "1")
    wait_for_lines(jsonl, 2, run)
    run.send_signal(signal.SIGINT)
    code, out, err = finish(run)
    assert code == 130 and json.loads(out)["stopped"], err
    assert "run the same command again" in err
    first = lines(jsonl)

    # SIGKILL of the parent alone, two workers running: no cleanup at all, and the workers leave by themselves
    run = handler(tmp_path, "photos", "--jobs", "2")
    wait_for_lines(jsonl, len(first) + 2, run)
    spawned = workers(run.pid)
    assert len(spawned) == 2
    run.kill()
    finish(run)
    deadline = time.monotonic() + 10
    while any(Path(f"/proc/{pid}").exists() for pid in spawned) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(Path(f"/proc/{pid}").exists() for pid in spawned), "orphaned workers kept running"
    # a kill in the middle of a write would leave a torn last line: make one
    done = lines(jsonl)
    assert len(done) < 14
    with open(jsonl, "a") as f:
        f.write(json.dumps({"path": "photos/part1/13-camera.png", "size": 1})[:25])

    code, out, err = finish(handler(tmp_path, "photos"))
    assert code == 0, err
    assert f"{len(done)} skipped" in err
    final = lines(jsonl)
    paths = [r["path"] for r in final]
    assert sorted(paths) == sorted(p.relative_to(tmp_path).as_posix() for p in photos.rglob("*.png"))
    assert len(set(paths)) == len(paths) == 14
    assert final[:len(done)] == done  # nothing earlier was rewritten
