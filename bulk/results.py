"""A folder run's results: the JSON Lines file (appended whole lines, read back to resume) and its CSV view."""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Iterable
from pathlib import Path

CSV_COLUMNS = ("path", "face", "x", "y", "width", "height", "detection_confidence", "gender", "gender_confidence",
               "age", "age_low", "age_high", "age_bucket", "quality", "label")


def read_results(jsonl: Path) -> dict[str, dict]:
    """The last line for each photo key in the file ({} if there is none).

    A hard kill can leave a torn last line (no newline, or not JSON): it is cut off here, so the file
    holds whole lines only and that photo is done again.
    """
    if not jsonl.exists():
        return {}
    data = jsonl.read_bytes()
    whole = data[:data.rfind(b"\n") + 1]
    if len(whole) < len(data):
        with open(jsonl, "r+b") as f:
            f.truncate(len(whole))
    lines: dict[str, dict] = {}
    for raw in whole.splitlines():
        try:
            line = json.loads(raw)
        except ValueError:  # a torn line in the middle: only a hand edit or a full disk can make one
            continue
        if isinstance(line, dict) and isinstance(line.get("path"), str):
            lines[line["path"]] = line
    return lines


class LineWriter:
    """Appends each result as one whole line with one write(2) call on an O_APPEND file, so a Ctrl-C or
    a kill between photos leaves whole lines only, and nothing is held in a Python buffer."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def write(self, line: dict) -> None:
        data = (json.dumps(line, separators=(",", ":")) + "\n").encode()
        while data:  # a regular file takes it all at once; the loop is for a full disk's short write
            data = data[os.write(self._fd, data):]

    def close(self) -> None:
        os.close(self._fd)


def face_rows(line: dict) -> Iterable[list]:
    """One CSV row per face of a result line (none for a failed photo)."""
    for face in line.get("faces", []):
        gender, age = face.get("gender") or {}, face.get("age") or {}
        interval = age.get("interval") or {}
        quality = face.get("quality") or {}
        yield [line["path"], face["rank"], *(face["box"][k] for k in ("x", "y", "width", "height")),
               face["detection_confidence"], gender.get("value"), gender.get("confidence"), age.get("years"),
               interval.get("low"), interval.get("high"), age.get("bucket"),
               "ok" if quality.get("ok") else " ".join(quality.get("issues", [])), face.get("label")]


def write_csv(path: Path, lines: Iterable[dict]) -> int:
    """Write the table (one row per face) through a temporary file, so it is never half written; the rows."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    rows = 0
    with open(tmp, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(CSV_COLUMNS)
        for line in lines:
            for row in face_rows(line):
                writer.writerow(row)
                rows += 1
    os.replace(tmp, path)
    return rows
