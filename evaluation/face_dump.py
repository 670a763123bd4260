"""The attribute nets' raw outputs for every face of a labelled folder, computed once and cached.

Fitting the calibration, evaluating it and the light study all read these arrays
instead of re-running the nets: one pass over 1,080 faces takes 3-4 minutes on 2
shared cores, a refit takes a second. The cache (an .npz under build/, never
committed) is keyed by the folder, its labels, the transform, the manifest's nets and
the source of every module between the image and the nets' outputs, so a change to a
net, the chips or detection makes a fresh dump rather than a stale calibration.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from evaluation.labels import Label, read_labels

ROOT = Path(__file__).resolve().parent.parent
CACHE_DIR = ROOT / "build" / "calibration-cache"
# Whole files, not single functions: a detection change may add helpers a function list would miss.
_CODE = ["handler/pipeline.py", "handler/chips.py", "handler/models.py", "handler/imaging.py", "handler/detection.py"]


def _sepia(image: np.ndarray) -> np.ndarray:
    # The classic sepia matrix (rows: output B, G, R from input B, G, R).
    matrix = np.array([[0.131, 0.534, 0.272], [0.168, 0.686, 0.349], [0.189, 0.769, 0.393]], np.float32)
    return np.clip(image.astype(np.float32) @ matrix.T, 0, 255).astype(np.uint8)


def _levels(gain: float, offset: float = 0.0) -> Callable[[np.ndarray], np.ndarray]:
    return lambda image: np.clip(image.astype(np.float32) * gain + offset, 0, 255).astype(np.uint8)


def _contrast(factor: float) -> Callable[[np.ndarray], np.ndarray]:
    # Towards mid-grey, as a faded print or a flat scan.
    return _levels(factor, 128 * (1 - factor))


def _grey(image: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR)


# Synthetic light and old-scan conditions for the light study (applied to the photo before the border).
TRANSFORMS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "none": lambda image: image,
    "darker x0.5": _levels(0.5),
    "darker x0.25": _levels(0.25),
    "darker x0.12": _levels(0.12),
    "brighter x1.6": _levels(1.6),
    "brighter x2.5": _levels(2.5),
    "brighter x4": _levels(4.0),
    "contrast x0.5": _contrast(0.5),
    "contrast x0.25": _contrast(0.25),
    "grayscale": _grey,
    "sepia": _sepia,
    "old scan (sepia, contrast x0.5)": lambda image: _contrast(0.5)(_sepia(image)),
}


@dataclass(frozen=True)
class Dump:
    """Per image, the best-ranked face's raw outputs (NaN rows where no face was found)."""

    labels: list[Label]
    found: np.ndarray          # [N] bool
    p_male: np.ndarray         # [N] uncalibrated p(male) (pipeline.attribute_outputs)
    years: np.ndarray          # [N] predicted age
    luminance: np.ndarray      # [N] mean luma (0-255) inside the detector box
    contrast: np.ndarray       # [N] standard deviation of that luma
    ms: np.ndarray             # [N] detection + attribute nets, per image
    mirror_spread: np.ndarray  # [N] |age of the chip - age of its mirror|: the interval's per-face difficulty

    def every(self, step: int) -> Dump:
        """Every `step`-th image, as `load(..., step=step)` would give."""
        return Dump(self.labels[::step], *(getattr(self, f.name)[::step] for f in dataclasses.fields(self)[1:]))

    @property
    def ages(self) -> np.ndarray:
        return np.array([lab.age for lab in self.labels], np.float64)

    @property
    def is_male(self) -> np.ndarray:
        return np.array([lab.gender == "male" for lab in self.labels])


def _cache_path(folder: Path, transform: str, border: int, step: int) -> Path:
    digest = hashlib.sha256()
    digest.update(str(folder.resolve()).encode())
    digest.update((folder / "labels.csv").read_bytes())
    for name in _CODE:
        if (ROOT / name).is_file():
            digest.update((ROOT / name).read_bytes())
    # The nets, not the calibration pin, which every refit rewrites.
    digest.update(json.dumps(json.loads((ROOT / "models" / "manifest.json").read_text())["nets"]).encode())
    digest.update(f"{transform}|{border}|{step}".encode())
    slug = "".join(c if c.isalnum() else "-" for c in transform)
    return CACHE_DIR / f"{folder.resolve().name}-{slug}-{digest.hexdigest()[:12]}.npz"


def compute(folder: Path, transform: str = "none", border: int = 60, step: int = 1) -> Dump:
    """Run detection and the attribute nets on every `step`-th labelled image (padded by `border` px)."""
    from handler import runtime
    from handler.pipeline import attribute_outputs, detect_faces, face_luma, rank_faces
    from handler.service import DEFAULT_OPTIONS

    models = runtime.get_models()
    labels = read_labels(folder)[::step]
    n = len(labels)
    found = np.zeros(n, bool)
    p_male, years = np.full(n, np.nan), np.full(n, np.nan)
    luminance, contrast, ms = np.full(n, np.nan), np.full(n, np.nan), np.full(n, np.nan)
    mirror_spread = np.full(n, np.nan)
    change = TRANSFORMS[transform]
    for i, label in enumerate(labels):
        image = cv2.imread(str(folder / label.file), cv2.IMREAD_COLOR)
        if image is None:
            raise SystemExit(f"cannot read image {folder / label.file}")
        image = change(image)
        if border:
            image = cv2.copyMakeBorder(image, border, border, border, border, cv2.BORDER_CONSTANT, value=(0, 0, 0))
        image = np.ascontiguousarray(image)
        t0 = time.perf_counter()
        options = DEFAULT_OPTIONS
        faces = rank_faces(image, detect_faces(image, models, options.min_confidence, options.detail,
                                               options.detect_max_side))
        if not faces:
            ms[i] = (time.perf_counter() - t0) * 1000
            continue
        best = faces[:1]
        p, y, spread = attribute_outputs(image, best, models)
        ms[i] = (time.perf_counter() - t0) * 1000
        found[i] = True
        p_male[i], years[i], mirror_spread[i] = p[0], y[0], spread[0]
        luminance[i], contrast[i] = face_luma(image, best[0].box)
    return Dump(labels, found, p_male, years, luminance, contrast, ms, mirror_spread)



def load(folder: Path, transform: str = "none", border: int = 60, step: int = 1) -> Dump:
    """The dump for a folder and transform, from build/ when the code and data are unchanged."""
    path = _cache_path(folder, transform, border, step)
    labels = read_labels(folder)[::step]
    if path.is_file():
        data = np.load(path)
        return Dump(labels, *(data[f.name] for f in dataclasses.fields(Dump)[1:]))
    dump = compute(folder, transform, border, step)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    np.savez_compressed(tmp, **{f.name: getattr(dump, f.name) for f in dataclasses.fields(Dump)[1:]})
    tmp.replace(path)
    return dump
