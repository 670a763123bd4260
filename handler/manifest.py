"""models/manifest.json, read in one place: each net's files (size, sha256), backend and input contract,
and the pin of the fitted calibration.

Its readers: the runtime (models.py loads what it names), the calibration check (calibration.py: the
pin, and the nets the parameters were fitted for), and the package build (infra/package/: which files
ship, their hashes, and the smoke test that runs every net of the unpacked zip through its input
contract). Stdlib only, so the build can read it without starting the nets.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from handler.errors import ModelError

FILE_NAME = "manifest.json"
FIX = "run `make models` (or set MODEL_DIR to a folder holding the verified files)"


@dataclass(frozen=True)
class NetSpec:
    """One manifest entry with file paths resolved to absolute paths."""

    key: str
    role: str
    adapter: str
    backend: str
    id: str
    files: dict[str, Path]
    input: dict[str, Any]
    extra: dict[str, Any] = field(default_factory=dict)
    expected: dict[str, tuple[int, str]] = field(default_factory=dict)  # file role -> (bytes, sha256)

    @property
    def input_size(self) -> tuple[int, int]:
        return int(self.input["width"]), int(self.input["height"])


@dataclass(frozen=True)
class Manifest:
    """The nets by key, and the calibration pin as written (`name`, `bytes`, `sha256`; None when absent)."""

    nets: dict[str, NetSpec]
    calibration: Any


def read(model_dir: Path) -> Manifest:
    """Parse manifest.json in model_dir; raise ModelError if absent or malformed."""
    path = model_dir / FILE_NAME
    try:
        manifest = json.loads(path.read_text())
        nets = {
            key: NetSpec(
                key=key, role=net["role"], adapter=net["adapter"], backend=net["backend"], id=net["id"],
                files={k: (model_dir / f["name"]).resolve() for k, f in net["files"].items()},
                input=net["input"],
                extra={k: v for k, v in net.items() if k in ("labels", "values")},
                expected={k: (int(f["bytes"]), str(f["sha256"])) for k, f in net["files"].items()},
            )
            for key, net in manifest["nets"].items()
        }
    except FileNotFoundError:
        raise ModelError(f"model manifest not found: {path}; {FIX}") from None
    except (ValueError, KeyError, TypeError) as exc:
        raise ModelError(f"model manifest {path} is malformed ({exc!r})") from None
    return Manifest(nets, manifest.get("calibration"))


def read_manifest(model_dir: Path) -> dict[str, NetSpec]:
    """The nets of manifest.json in model_dir, by key; raise ModelError if absent or malformed."""
    return read(model_dir).nets


def verify_files(spec: NetSpec) -> None:
    """Check that a net's files exist with the manifest's sizes, naming the first bad one.

    Sizes only, not sha256: hashing the 31 MB of weights cost every cold start ~46 ms of
    CPU (docs/decisions.md, "Model files: hashed at fetch and build, sized at start-up"). The
    hash is checked where files are written: `make models`, the package build and `make
    verify-models`; Lambda checks its zip's own sha256 when it is deployed.
    """
    for role, path in spec.files.items():
        size = spec.expected[role][0]
        if not path.is_file():
            raise ModelError(f"model file missing: {path}; {FIX}")
        actual = path.stat().st_size
        if actual != size:
            raise ModelError(f"model file {path} is {actual:,} bytes, expected {size:,} "
                             f"(truncated or wrong file); {FIX}")
