"""Staging our code and models: handler/ whole (no bytecode caches), models/ by MODEL_INCLUDE, hashes checked."""

from __future__ import annotations

import fnmatch
import hashlib
import importlib
import os
import shutil
import sys
import types
from pathlib import Path

from . import ROOT

# What goes from models/ into the package (globs relative to models/).
# Everything else there (README, fetch.py, caches) stays out.
MODEL_INCLUDE = (
    "*.onnx",  # yunet.onnx: models/convert_yunet.py, from the build-only libfacedetection.so (not shipped)
    "*.npz",  # the 5-point landmark model as arrays: models/convert_shape_predictor.py, from dlib's .dat (not shipped)
    "manifest.json",
    "calibration.json",  # fitted by `make calibrate`, pinned by the manifest
    "notices/*",
    "LICENSE*",
)
WEIGHT_SUFFIXES = (".caffemodel", ".prototxt.txt", ".onnx", ".npz")
# handler/ ships whole: it holds only what the functions run (dev tools live in evaluation/ and tools/;
# tests/unit/test_reachable.py keeps it so). Only the build interpreter's bytecode caches stay out.
BYTECODE_DIRS = {"__pycache__"}
BYTECODE_FILES = ("*.pyc", "*.pyo")


def copy_handler(src: Path, dest_root: Path) -> int:
    if not (src / "__init__.py").is_file():
        raise SystemExit(f"error: {src} is not a Python package (no __init__.py)")
    n = 0
    for dirpath, dirnames, filenames in os.walk(src):
        dirnames[:] = sorted(d for d in dirnames if d not in BYTECODE_DIRS)
        for fn in sorted(filenames):
            s = Path(dirpath) / fn
            if any(fnmatch.fnmatch(fn, pat) for pat in BYTECODE_FILES):
                continue
            d = dest_root / "handler" / s.relative_to(src)
            d.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(s, d)
            n += 1
    return n


def stage_app(handler_dir: Path, models_dir: Path, dest_root: Path) -> tuple[int, int]:
    """Copy our code and models (the application tree) into *dest_root*: (handler files, model files).

    The one selection every way of shipping uses: the zip's stage, the container image's build
    context (infra/Dockerfile COPYs <out>/app/, made by `--app-only`) and the Cloud Run sources
    (infra/gcp/deploy*.sh), so none of them keeps a list of files of its own.
    """
    return copy_handler(handler_dir, dest_root), copy_models(models_dir, dest_root)


def read_nets(model_dir: Path) -> dict:
    """The manifest's nets (handler.manifest.NetSpec by key), read by the runtime's own reader.

    handler/manifest.py is stdlib only; it is imported without running handler/__init__.py (which
    loads and warms every net), and the bare package is dropped again so a later `import handler` is
    the real one.
    """
    bare = "handler" not in sys.modules
    if bare:
        package = types.ModuleType("handler")
        package.__path__ = [str(ROOT / "handler")]
        sys.modules["handler"] = package
    try:
        reader = importlib.import_module("handler.manifest")
        errors = importlib.import_module("handler.errors")
    finally:
        if bare:
            for name in [m for m in sys.modules if m == "handler" or m.startswith("handler.")]:
                del sys.modules[name]
    try:
        return reader.read_manifest(model_dir)
    except errors.ModelError as exc:
        raise SystemExit(f"error: {exc}") from None


def copy_models(src: Path, dest_root: Path) -> int:
    if not src.is_dir():
        raise SystemExit(f"error: model directory {src} does not exist (run `make models`)")
    picked = sorted({p for pat in MODEL_INCLUDE for p in src.glob(pat) if p.is_file()})
    if not any(p.suffix == ".onnx" for p in picked):
        raise SystemExit(f"error: no model weights (*.onnx) in {src} (run `make models`)")
    # Every file manifest.json names (nets.*.files.*.name) must be in the package:
    # the handler checks them all (presence and size) at import time.
    manifest = src / "manifest.json"
    if manifest.is_file():
        nets = read_nets(src)
        named = {path.relative_to(src.resolve()).as_posix() for spec in nets.values() for path in spec.files.values()}
        # Weights the manifest no longer names (e.g. age-v1.onnx, left by an older `make models`) stay out.
        picked = [p for p in picked if p.relative_to(src).as_posix() in named or not p.name.endswith(WEIGHT_SUFFIXES)]
        missing = sorted(named - {p.relative_to(src).as_posix() for p in picked})
        if missing:
            raise SystemExit(
                f"error: {manifest} names {', '.join(missing)}, which "
                + (
                    "MODEL_INCLUDE in infra/package/stage.py does not match"
                    if all((src / m).is_file() for m in missing)
                    else f"are missing from {src} (run `make models`)"
                )
            )
    for s in picked:
        d = dest_root / "models" / s.relative_to(src)
        d.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(s, d)
    verify_model_hashes(dest_root / "models")
    return len(picked)


def verify_model_hashes(models: Path) -> None:
    """Every manifest file in the staged tree has its size and sha256: the build checks the hash,
    so the function need only check sizes at start-up (docs/decisions.md, "Model files")."""
    manifest = models / "manifest.json"
    if not manifest.is_file():
        return
    for spec in read_nets(models).values():
        for role, path in spec.files.items():
            size, sha256 = spec.expected[role]
            digest = hashlib.sha256()
            with path.open("rb") as fh:
                for block in iter(lambda fh=fh: fh.read(1 << 20), b""):
                    digest.update(block)
            if path.stat().st_size != size or digest.hexdigest() != sha256:
                raise SystemExit(f"error: {path.name} does not match models/manifest.json's size and sha256 "
                                 "(run `make models`)")

