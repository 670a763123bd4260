"""Pruning: each step removes files Lambda never runs from the staging dir, and says how many."""

from __future__ import annotations

import shutil
from pathlib import Path


def _rm(paths) -> int:
    n = 0
    for p in sorted(set(paths), key=lambda x: len(x.parts), reverse=True):
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p)
            n += 1
        elif p.exists() or p.is_symlink():
            p.unlink()
            n += 1
    return n


def prune_bytecode(site: Path) -> int:
    # pip runs under the *build* interpreter (3.11 here), so any bytecode it
    # wrote is for the wrong version; Lambda's /var/task is read-only, so
    # stale caches are never rewritten either.
    return _rm(list(site.rglob("__pycache__")) + list(site.rglob("*.pyc")) + list(site.rglob("*.pyo")))


def prune_scripts(site: Path) -> int:
    # console scripts (f2py, numpy-config) with a build-venv shebang
    return _rm([site / "bin"])


def prune_tests(site: Path) -> int:
    # numpy/tests, numpy/_core/tests, numpy/*/tests, ... (never imported at runtime)
    return _rm([d for d in site.rglob("tests") if d.is_dir()])


def prune_stubs(site: Path) -> int:
    # type stubs and Cython declarations: only read by type checkers / cython
    return _rm([p for pat in ("*.pyi", "py.typed", "*.pxd") for p in site.rglob(pat)])


def prune_numpy_dev(site: Path) -> int:
    # C headers, static libs and pkg-config files (for building extensions
    # against numpy), f2py (Fortran wrapper generator, imported lazily only on
    # `numpy.f2py` access) and the PyInstaller hook.
    np = site / "numpy"
    return _rm(
        [
            np / "_core" / "include",
            np / "_core" / "lib",
            np / "random" / "lib",
            np / "random" / "_examples",
            np / "f2py",
            np / "_pyinstaller",
        ]
    )


def prune_cv2_data(site: Path) -> int:
    # Haar cascade XMLs (~9.7 MB). cv2/__init__ imports every sub-package,
    # so keep cv2/data/__init__.py (it only defines cv2.data.haarcascades).
    return _rm(list((site / "cv2" / "data").glob("*.xml")))


PRUNE_STEPS = [
    ("- __pycache__ / *.pyc (build-interpreter bytecode)", prune_bytecode),
    ("- bin/ console scripts", prune_scripts),
    ("- tests/ directories", prune_tests),
    ("- typing stubs *.pyi, py.typed, Cython *.pxd", prune_stubs),
    ("- numpy headers, static libs, f2py, pyinstaller hook", prune_numpy_dev),
    ("- cv2/data haar cascades (*.xml)", prune_cv2_data),
]

