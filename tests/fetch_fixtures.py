"""Fetch the test photos from scikit-image's wheel (pinned) and verify their sha256.

Usage: python tests/fetch_fixtures.py   (stdlib only; `make install` runs it)
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
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


def _ok(path: Path, sha: str) -> bool:
    return path.is_file() and hashlib.sha256(path.read_bytes()).hexdigest() == sha


def main() -> int:
    DEST.mkdir(exist_ok=True)
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
