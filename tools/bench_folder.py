#!/usr/bin/env python3
"""`make bench-folder`: photos per second of `python -m handler FOLDER` for 1 and N jobs, against the
steady in-process rate on the same photos (the service's analyze_bytes in a loop in one warm process).

Two folders: 1,000 faces of ../shared/utkface-dev (200x200 chips, linked, not copied) and phone-size
photos (the fixtures upscaled to 12 MP JPEGs, several copies each). `photos/s` is the run's own rate
(workers' start-up included, the parent's import not), `whole command` the same over the command's wall
time, `CPU ms/photo` the CPU time of all its processes per photo (what a loaded machine can't blur).
Printed as a table; nothing asserts (the targets are beside the figures).

    .venv/bin/python tools/bench_folder.py [--faces 1000] [--phone 40] [--jobs 1 2] [--runs 1]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
UTKFACE = ROOT.parent / "shared" / "utkface-dev" / "img"
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

IN_PROCESS = r"""
import json, pathlib, sys, time
from handler.__main__ import build_parser, cli_options
from handler.service import analyze_file
files = sorted(p for p in pathlib.Path(sys.argv[1]).rglob("*") if p.is_file())
opts = cli_options(build_parser().parse_args([sys.argv[1]]))   # what the folder form asks for: no image
for path in files[:5]:
    analyze_file(path, opts)
t, cpu = time.perf_counter(), time.process_time()
for path in files:
    analyze_file(path, opts)
rate, cpu_ms = len(files) / (time.perf_counter() - t), (time.process_time() - cpu) * 1000 / len(files)
print(json.dumps({"rate": rate, "cpu_ms": cpu_ms}))
"""


def make_phone(folder: Path, count: int) -> None:
    """`count` 12 MP JPEGs: each fixture upscaled to 4000x3000, copies spread over two subfolders."""
    import cv2
    from helpers import fixture_image, jpeg

    names = ["astronaut.png", "camera.png", "chelsea.png", "coffee.png", "group6.jpg"]
    data = [jpeg(cv2.resize(fixture_image(n), (4000, 3000), interpolation=cv2.INTER_CUBIC)) for n in names]
    for i in range(count):
        target = folder / f"day{i % 2}" / f"{i:04d}-{names[i % len(names)].split('.')[0]}.jpg"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data[i % len(names)])


def make_faces(folder: Path, count: int) -> None:
    folder.mkdir(parents=True)
    for path in sorted(UTKFACE.iterdir())[:count]:
        (folder / path.name).symlink_to(path)


def env() -> dict[str, str]:
    return {**os.environ, "LOG_LEVEL": "WARNING", "PYTHONPATH": str(ROOT)}


def in_process(folder: Path) -> tuple[float, float, float]:
    """(steady photos/s, the same, CPU ms per photo) of the per-photo flow in a loop in one warm process."""
    out = subprocess.run([sys.executable, "-c", IN_PROCESS, str(folder)], cwd=ROOT, env=env(),
                         capture_output=True, text=True, check=True).stdout
    result = json.loads(out.splitlines()[-1])
    return result["rate"], result["rate"], result["cpu_ms"]


def folder_run(folder: Path, jobs: int, scratch: Path) -> tuple[float, float, float]:
    """(the run's photos/s, photos/s of the whole command, CPU ms per photo of the whole command, workers
    included) for one fresh run. The CPU time is what a loaded machine can't blur: on a shared machine
    (Linux's autogroup gives each session one share whatever its process count) N jobs get no more
    wall-clock time than one."""
    jsonl = scratch / f"run-{jobs}-{time.monotonic_ns()}.jsonl"
    t, before = time.perf_counter(), resource.getrusage(resource.RUSAGE_CHILDREN)
    out = subprocess.run([sys.executable, "-m", "handler", str(folder), "--jsonl", str(jsonl), "--jobs", str(jobs)],
                         cwd=ROOT, env=env(), capture_output=True, text=True)
    wall, after = time.perf_counter() - t, resource.getrusage(resource.RUSAGE_CHILDREN)
    summary = json.loads(out.stdout.splitlines()[-1])
    cpu = (after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime) * 1000 / summary["photos"]
    return summary["photos_per_second"], summary["photos"] / wall, cpu


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--faces", type=int, default=1000, help="utkface-dev photos (default 1000)")
    parser.add_argument("--phone", type=int, default=40, help="12 MP photos (default 40)")
    parser.add_argument("--jobs", type=int, nargs="+", default=[1, os.cpu_count() or 1])
    parser.add_argument("--runs", type=int, default=1, help="runs of each command, medians (default 1)")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp)
        folders = {}
        if UTKFACE.is_dir() and args.faces:
            make_faces(scratch / "faces", args.faces)
            folders[f"{args.faces:,} utkface-dev faces"] = scratch / "faces"
        if args.phone:
            make_phone(scratch / "phone", args.phone)
            folders[f"{args.phone} phone photos, 12 MP"] = scratch / "phone"
        for name, folder in folders.items():
            runs = [in_process(folder) for _ in range(args.runs)]
            base, base_cpu = statistics.median(r[0] for r in runs), statistics.median(r[2] for r in runs)
            rows.append([name, "in-process steady", f"{base:.2f}", "", f"{base_cpu:.0f}", "", ""])
            one = None
            for jobs in args.jobs:
                runs = [folder_run(folder, jobs, scratch) for _ in range(args.runs)]
                rate, wall, cpu = (statistics.median(r[i] for r in runs) for i in range(3))
                one = rate if jobs == 1 else one
                scaling = f"{rate / one / jobs:.2f}" if one and jobs > 1 else ""
                rows.append([name, f"--jobs {jobs}", f"{rate:.2f}", f"{wall:.2f}", f"{cpu:.0f}",
                             f"{base / rate:.2f}" if jobs == 1 else "", scaling])
    load = os.getloadavg()
    print(f"python -m handler FOLDER: photos/s; {os.cpu_count()} cores; load average {load[0]:.1f} at the end; "
          f"medians of {args.runs} run(s)")
    header = ["folder", "how", "photos/s", "whole command", "CPU ms/photo", "steady/1 job (target <= 1.2)",
              "N jobs / (N x 1 job) (target >= 0.8)"]
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, ["-" * w for w in widths], *rows]:
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
