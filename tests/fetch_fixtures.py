"""Fetch the test photos from scikit-image's wheel and insightface's sdist (pinned) and verify their sha256.

insightface's t1.jpg: a real group photo of six people (1280x886, faces ~95-107 px), used by the
detector's tests; MIT-licensed package, the photo is test data only (never shipped).

Usage: python tests/fetch_fixtures.py   (stdlib only; `make install` runs it)
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

DEST = Path(__file__).resolve().parent / "fixtures"
PACKAGE = "scikit-image==0.26.0"
FILES = {
    "astronaut.png": "88431cd9653ccd539741b555fb0a46b61558b301d4110412b5bc28b5e3ea6cb5",
    "camera.png": "b0793d2adda0fa6ae899c03989482bff9a42d3d5690fc7e3648f2795d730c23a",
    "chelsea.png": "596aa1e7cb875eb79f437e310381d26b338a81c2da23439704a73c4651e8c4bb",
    "coffee.png": "cc02f8ca188b167c775a7101b5d767d1e71792cf762c33d6fa15a4599b5a8de7",
}

SDIST = "insightface==2.1"
SDIST_FILES = {"insightface-2.1/insightface/data/images/t1.jpg":
               ("group6.jpg", "47f682e945b659f93a9e490b9c9c4a2a864abe64dace9e1a2893845ddfd69489")}


def _ok(path: Path, sha: str) -> bool:
    return path.is_file() and hashlib.sha256(path.read_bytes()).hexdigest() == sha


def _from_sdist() -> None:
    if all(_ok(DEST / name, sha) for name, sha in SDIST_FILES.values()):
        return
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--no-binary=:all:",
                        SDIST, "-d", tmp], check=True)
        (sdist,) = Path(tmp).glob("insightface-*.tar.gz")
        with tarfile.open(sdist) as tf:
            for member, (name, sha) in SDIST_FILES.items():
                data = tf.extractfile(member).read()
                if hashlib.sha256(data).hexdigest() != sha:
                    raise SystemExit(f"fixtures: {member} in {sdist.name} has an unexpected sha256")
                (DEST / name).write_bytes(data)
    print(f"fixtures: {', '.join(n for n, _ in SDIST_FILES.values())} in {DEST}")


def main() -> int:
    DEST.mkdir(exist_ok=True)
    _from_sdist()
    if all(_ok(DEST / name, sha) for name, sha in FILES.items()):
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
                        PACKAGE, "-d", tmp], check=True)
        (wheel,) = Path(tmp).glob("scikit_image-*.whl")
        with zipfile.ZipFile(wheel) as zf:
            for name, sha in FILES.items():
                data = zf.read(f"skimage/data/{name}")
                if hashlib.sha256(data).hexdigest() != sha:
                    raise SystemExit(f"fixtures: {name} in {wheel.name} has an unexpected sha256")
                (DEST / name).write_bytes(data)
    print(f"fixtures: {', '.join(FILES)} in {DEST}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
