"""The model manifest, loading, file checks, warm-up and thread-safe inference.

A net is its manifest entry (files with size and sha256, backend, input
contract) plus a small adapter class that turns arrays into answers. Adding a
net means a manifest entry and, if its output is new, an adapter, not new
plumbing.
"""

from __future__ import annotations

import json
import queue
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from handler import calibration
from handler.calibration import Calibration
from handler.detection import detect_multiscale
from handler.errors import ModelError

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


def read_manifest(model_dir: Path) -> dict[str, NetSpec]:
    """Parse models/manifest.json in model_dir; raise ModelError if absent or malformed."""
    path = model_dir / "manifest.json"
    try:
        manifest = json.loads(path.read_text())
        return {
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


def verify_files(spec: NetSpec) -> None:
    """Check that a net's files exist with the manifest's sizes, naming the first bad one.

    Sizes only, not sha256: hashing the 31 MB of weights cost every cold start ~46 ms of
    CPU (README, "Model files: hashed at fetch and build, sized at start-up"). The hash is
    checked where files are written: `make models`, the package build and `make
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


def _read_net(spec: NetSpec) -> cv2.dnn.Net:
    if spec.backend == "caffe":
        if int(cv2.__version__.split(".")[0]) >= 5:
            raise ModelError(
                f"net {spec.key!r} is a Caffe model but OpenCV {cv2.__version__} removed the Caffe importer; "
                "install opencv-python-headless>=4.8,<5 (see requirements.txt)"
            )
        return cv2.dnn.readNetFromCaffe(str(spec.files["config"]), str(spec.files["weights"]))
    if spec.backend == "onnx":
        return cv2.dnn.readNetFromONNX(str(spec.files["weights"]))
    raise ModelError(f"net {spec.key!r} has unknown backend {spec.backend!r}")


class LoadedNet:
    """A pool of `clones` copies of one cv2.dnn.Net: `forward()` on one Net is not thread-safe.

    Each forward borrows a free copy and returns it, so with one copy (the default)
    this is a lock. More copies let requests that share a process (functions-framework
    threads, Cloud Run with concurrency > 1) run forwards at the same time, each copy
    holding its own weights and buffers: see NET_CLONES in the README for what that buys.
    """

    def __init__(self, spec: NetSpec, clones: int = 1) -> None:
        self.spec = spec
        t0 = time.perf_counter()
        try:
            self._nets = [_read_net(spec) for _ in range(clones)]
        except cv2.error as exc:
            raise ModelError(f"net {spec.key!r} failed to load from {list(map(str, spec.files.values()))}: "
                             f"{exc.msg if hasattr(exc, 'msg') else exc}; {FIX}") from None
        self.load_ms = (time.perf_counter() - t0) * 1000
        self._free: queue.SimpleQueue[cv2.dnn.Net] = queue.SimpleQueue()
        for net in self._nets:
            self._free.put(net)
        self.warm_ms = 0.0

    def forward(self, blob: np.ndarray) -> np.ndarray:
        """Run the net on a NCHW float32 blob and return a copy of its output."""
        net = self._free.get()
        try:
            net.setInput(blob)
            return net.forward().copy()
        finally:
            self._free.put(net)

    def warm(self) -> None:
        """One dummy forward per copy, so the first real request pays no lazy initialisation.

        (`service.warm_up` then runs the whole pipeline once on a synthetic photo.)
        """
        width, height = self.spec.input_size
        blob = np.zeros((1, 3, height, width), np.float32)
        t0 = time.perf_counter()
        for net in self._nets:  # at load time, before any request can borrow one
            net.setInput(blob)
            net.forward()
        self.warm_ms = (time.perf_counter() - t0) * 1000


class _CvAdapter:
    """Common part of the adapters over one cv2.dnn net."""

    def __init__(self, spec: NetSpec, clones: int = 1) -> None:
        self.spec = spec
        self.net = LoadedNet(spec, clones)

    def warm(self) -> None:
        self.net.warm()

    @property
    def load_ms(self) -> float:
        return self.net.load_ms

    @property
    def warm_ms(self) -> float:
        return self.net.warm_ms


class SsdDetector(_CvAdapter):
    """Adapter for SSD face detectors with a [1, 1, N, 7] DetectionOutput, at any photo size (handler.detection)."""

    def __init__(self, spec: NetSpec, clones: int = 1) -> None:
        super().__init__(spec, clones)
        self._fill = tuple(float(v) for v in spec.input["mean"])  # padding that is 0 after mean subtraction

    def _forward(self, image: np.ndarray) -> np.ndarray:
        """Rows of (confidence, x1, y1, x2, y2), normalised, for a BGR input at its own size."""
        blob = cv2.dnn.blobFromImage(image, self.spec.input["scale"], image.shape[1::-1],
                                     tuple(self.spec.input["mean"]),
                                     swapRB=self.spec.input["color_order"] == "RGB", crop=False)
        return self.net.forward(blob).reshape(-1, 7)[:, 2:7]

    def detect(self, image: np.ndarray, min_confidence: float, detail: str = "auto",
               fine_side: int = 2048) -> list[tuple[float, float, float, float, float]]:
        """Return (x1, y1, x2, y2, confidence) in pixels of `image`, unclipped."""
        return detect_multiscale(image, self._forward, self._fill, min_confidence, detail, fine_side)


class SoftmaxClassifier(_CvAdapter):
    """Adapter for nets whose output is a softmax over labels or values."""

    def predict(self, chips: list[np.ndarray]) -> np.ndarray:
        """Probabilities [N, K] for N BGR chips already at the net's input size.

        One forward per chip rather than one batch: cv2.dnn re-allocates a net's
        buffers whenever the batch size changes, so with face counts varying per
        photo a batch cost 2.36 ms/face against 2.06 one at a time (1.73 only when
        every photo has the same count), and the first photo with a new count paid more.
        """
        return np.concatenate([
            self.net.forward(cv2.dnn.blobFromImage(chip, self.spec.input["scale"], self.spec.input_size,
                                                   tuple(self.spec.input["mean"]),
                                                   swapRB=self.spec.input["color_order"] == "RGB", crop=False))
            .reshape(1, -1) for chip in chips])


class AgeGenderRegressor(_CvAdapter):
    """Adapter for face-api.js's AgeGenderNet (models/convert_agegender.py): (years, p(male), p(female)) per chip.

    The graph normalises its own input, so chips go in as RGB 0-255 at the net's size.
    """

    def predict(self, chips: list[np.ndarray]) -> np.ndarray:
        """[N, 3] for N BGR chips already at the net's input size (one forward each, as SoftmaxClassifier)."""
        return np.concatenate([
            self.net.forward(cv2.dnn.blobFromImage(chip, 1.0, self.spec.input_size, swapRB=True, crop=False))
            .reshape(1, -1) for chip in chips])


class ShapePredictor:
    """Adapter for dlib's landmark models (`dlib.shape_predictor`), e.g. the 5-point face model.

    One copy under a lock whatever `clones` says: a call takes under a millisecond.
    """

    def __init__(self, spec: NetSpec, clones: int = 1) -> None:
        import dlib

        self.spec = spec
        self._dlib = dlib
        t0 = time.perf_counter()
        try:
            self._predictor = dlib.shape_predictor(str(spec.files["weights"]))
        except RuntimeError as exc:
            raise ModelError(f"net {spec.key!r} failed to load from {spec.files['weights']}: {exc}; {FIX}") from None
        self.load_ms = (time.perf_counter() - t0) * 1000
        self.warm_ms = 0.0
        self._lock = threading.Lock()

    def warm(self) -> None:
        t0 = time.perf_counter()
        self.landmarks(np.zeros((64, 64, 3), np.uint8), (8, 8, 56, 56))
        self.warm_ms = (time.perf_counter() - t0) * 1000

    def landmarks(self, image: np.ndarray, rect: tuple[int, int, int, int]) -> Any:
        """dlib's full_object_detection for the face in `rect` (left, top, right, bottom)."""
        with self._lock:
            return self._predictor(image, self._dlib.rectangle(*rect))


ADAPTERS = {"ssd_detector": SsdDetector, "softmax_classifier": SoftmaxClassifier,
            "softmax_regressor": SoftmaxClassifier, "dlib_shape_predictor": ShapePredictor,
            "age_gender_regressor": AgeGenderRegressor}


@dataclass(frozen=True)
class Models:
    """Every loaded and warmed net, by manifest key, wrapped in its adapter."""

    nets: dict[str, Any]
    calibration: Calibration

    def __getitem__(self, key: str) -> Any:
        return self.nets[key]

    @property
    def ids(self) -> dict[str, str]:
        return {key: adapter.spec.id for key, adapter in self.nets.items()}


def load_models(model_dir: Path, on_loaded: Any = None, clones: int = 1) -> Models:
    """Check, load and warm every net in the manifest (`clones` copies of each cv2 net), then its calibration;
    `on_loaded(net)` is called per net."""
    nets = {}
    for key, spec in read_manifest(model_dir).items():
        if spec.adapter not in ADAPTERS:
            raise ModelError(f"net {key!r} names unknown adapter {spec.adapter!r}")
        verify_files(spec)
        adapter = ADAPTERS[spec.adapter](spec, clones)
        adapter.warm()
        if on_loaded:
            on_loaded(adapter)
        nets[key] = adapter
    return Models(nets, calibration.load(model_dir))
