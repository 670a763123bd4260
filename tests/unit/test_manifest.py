"""One manifest reader (handler/manifest.py): the runtime, the calibration check and the package build read
models/manifest.json through it, and the build's smoke test runs each net through the input contract it gives."""

from __future__ import annotations

import ast
import json
import shutil
import sys
from pathlib import Path

import pytest

from handler import manifest
from handler.config import PACKAGE_MODELS_DIR
from handler.errors import ModelError

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "infra"))
from package.stage import read_nets  # noqa: E402


def test_the_shipped_manifest_reads_whole() -> None:
    read = manifest.read(PACKAGE_MODELS_DIR)
    raw = json.loads((PACKAGE_MODELS_DIR / manifest.FILE_NAME).read_text())
    assert set(read.nets) == set(raw["nets"])
    assert read.calibration == raw["calibration"]
    for key, spec in read.nets.items():
        assert spec.key == key and spec.files and set(spec.files) == set(spec.expected)
        assert all(path.parent == PACKAGE_MODELS_DIR.resolve() for path in spec.files.values())


def test_the_build_reads_it_with_the_runtimes_reader() -> None:
    """infra/package/ (which files ship, their hashes) gets the same NetSpecs, and leaves no bare
    `handler` package behind for a later import."""
    assert read_nets(PACKAGE_MODELS_DIR) == manifest.read_manifest(PACKAGE_MODELS_DIR)
    assert sys.modules["handler"].__file__  # the real package, not a bare stand-in


def test_a_malformed_manifest_is_named(tmp_path: Path) -> None:
    shutil.copy(PACKAGE_MODELS_DIR / manifest.FILE_NAME, tmp_path / manifest.FILE_NAME)
    data = json.loads((tmp_path / manifest.FILE_NAME).read_text())
    del next(iter(data["nets"].values()))["files"]
    (tmp_path / manifest.FILE_NAME).write_text(json.dumps(data))
    with pytest.raises(ModelError, match="is malformed"):
        manifest.read(tmp_path)
    with pytest.raises(SystemExit, match="is malformed"):
        read_nets(tmp_path)
    with pytest.raises(ModelError, match="not found"):
        manifest.read(tmp_path / "nowhere")


def test_no_other_runtime_or_build_module_parses_the_manifest() -> None:
    """Only handler/manifest.py calls json.load(s) on it among handler/ and infra/package/."""
    for path in [*sorted((ROOT / "handler").glob("*.py")), *sorted((ROOT / "infra" / "package").glob("*.py"))]:
        if path.name == "manifest.py":
            continue
        tree = ast.parse(path.read_text())
        calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)
                 and n.func.attr in ("load", "loads") and "manifest" in ast.unparse(n)]
        assert not calls, f"{path.relative_to(ROOT)} parses the manifest itself: {[ast.unparse(c) for c in calls]}"
