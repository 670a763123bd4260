"""The Cloud Run job entry point: 3 task processes side by side against gcp-storage-emulator."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import cv2
import pytest
from google.auth.credentials import AnonymousCredentials
from google.cloud import storage
from helpers import fixture_image, jpeg
from servers import ROOT, gcs_emulator

BUCKET, OUT = "faceread-job-input", "faceread-job-output"
TASKS = 3


@pytest.fixture(scope="module")
def emulator():
    with gcs_emulator() as host:
        client = storage.Client(project="local", credentials=AnonymousCredentials(),
                                client_options={"api_endpoint": host})
        yield host, client


def run_tasks(host: str, execution: str, tasks: int = TASKS) -> list[dict]:
    """Start every task of one job execution at once, as Cloud Run does; return their log lines."""
    env = {**os.environ, "STORAGE_EMULATOR_HOST": host, "GOOGLE_CLOUD_PROJECT": "local", "OUTPUT_BUCKET": OUT,
           "CLOUD_RUN_TASK_COUNT": str(tasks), "CLOUD_RUN_EXECUTION": execution}
    procs = [subprocess.Popen([sys.executable, "-m", "handler.gcs_job", "--bucket", BUCKET], cwd=ROOT,
                              env={**env, "CLOUD_RUN_TASK_INDEX": str(i)}, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True) for i in range(tasks)]
    lines = []
    for proc in procs:
        out, _ = proc.communicate(timeout=300)
        assert proc.returncode == 0, out[-2000:]
        lines += [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    return lines


def keys_by_event(lines: list[dict], event: str) -> list[str]:
    return sorted(line["key"] for line in lines if line["event"] == event)


def test_three_tasks_process_every_object_exactly_once(emulator) -> None:
    host, client = emulator
    bucket, out = client.create_bucket(BUCKET), client.create_bucket(OUT)
    photos = [jpeg(cv2.resize(fixture_image(name), (200, 200))) for name in ("camera.png", "astronaut.png")]
    names = [f"uploads/set/{i:02d} é+.jpg" for i in range(8)]
    for i, name in enumerate(names):
        bucket.blob(name).upload_from_string(photos[i % 2], content_type="image/jpeg")
    bucket.blob("uploads/set/notes.txt").upload_from_string(b"not a photo")
    bucket.blob("elsewhere/x.jpg").upload_from_string(photos[0])  # outside the prefix: never listed

    first = run_tasks(host, "exec-1")
    assert keys_by_event(first, "object_analyzed") == names  # each exactly once, across the 3 tasks
    assert keys_by_event(first, "object_rejected") == ["uploads/set/notes.txt"]
    assert len({line["request_id"] for line in first if line["event"] == "object_analyzed"}) > 1  # really sharded
    results = {b.name for b in out.list_blobs(prefix="results/")}
    assert {f"results/set/{i:02d} é+.jpg.json" for i in range(8)} <= results

    summaries = [json.loads(out.blob(f"batch/summaries/exec-1/task-{i:04d}.summary.json").download_as_bytes())
                 for i in range(TASKS)]
    assert sum(s["images"] for s in summaries) == 9 and sum(s["bad_images"] for s in summaries) == 1
    assert sum(s["gender"]["male"] + s["gender"]["female"] + s["gender"]["unknown"] for s in summaries) == 8
    assert "metric,value" in out.blob("batch/summaries/exec-1/task-0000.summary.csv").download_as_text()

    # A second execution (one task, to keep the suite lean): the skip rule answers every object from
    # its result's metadata, no inference.
    again = run_tasks(host, "exec-2", tasks=1)
    assert keys_by_event(again, "object_analyzed") == [] and keys_by_event(again, "object_rejected") == []
    assert keys_by_event(again, "object_unchanged") == sorted([*names, "uploads/set/notes.txt"])
