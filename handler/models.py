"""Loading, warm-up and thread-safe inference of the nets the manifest names (handler/manifest.py).

A net is its manifest entry (files with size and sha256, backend, input
contract) plus a small adapter class that turns arrays into answers. Adding a
net means a manifest entry and, if its output is new, an adapter, not new
plumbing.
"""

from __future__ import annotations

import queue
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from handler import calibration
from handler.calibration import Calibration
from handler.detection import Detection, detect_at_detail
from handler.detector_shapes import DetectorsByShape
from handler.errors import ModelError
from handler.landmarks import ShapeModel
from handler.manifest import FIX, NetSpec, read_manifest, verify_files


def _read_net(spec: NetSpec) -> cv2.dnn.Net:
    if spec.backend == "onnx":
        return cv2.dnn.readNetFromONNX(str(spec.files["weights"]))
    raise ModelError(f"net {spec.key!r} has unknown backend {spec.backend!r}")


class LoadedNet:
    """A pool of `clones` copies of one cv2.dnn.Net: `forward()` on one Net is not thread-safe.

    Each forward borrows a free copy and returns it, so with one copy (the default)
    this is a lock. More copies let requests that share a process (functions-framework
    threads, Cloud Run with concurrency > 1) run forwards at the same time, each copy
    holding its own weights and buffers: docs/decisions.md, "Thread safety", for what that buys.
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
        blob = np.zeros((2, 3, height, width), np.float32)  # the pipeline's batch: a chip and its mirror
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


class YuNetDetector:
    """Adapter for YuNet on OpenCV's own `cv2.FaceDetectorYN` (the ONNX models/convert_yunet.py builds).

    A FaceDetectorYN holds one cv2.dnn.Net and its input size, so it is not
    thread-safe: like LoadedNet, a pool of `clones` copies, each call borrowing
    one (one copy: a lock); a copy is a detector per input shape (DetectorsByShape).
    FaceDetectorYN pads the input to a multiple of 32 with zeros, decodes score = sqrt(cls * obj),
    boxes and the 5 landmarks, and applies non-maximum suppression (IoU 0.3, libfacedetection's).
    `threads` sets OpenCV's thread count for the process at load time (cv2.setNumThreads is global):
    docs/decisions.md, "DETECT_THREADS".
    """

    _NMS_IOU = 0.3
    _TOP_K = 5000
    _MIN_SIDE = 64
    # Input pixels whose detectors the process keeps (handler/detector_shapes.py), about 210 MB of buffers:
    # one band of a big photo's finer pass (at most detection.BAND_PIXELS) plus the 640 px pass in both
    # orientations and the crops that pass re-checks. Shared out between the copies, so memory does not
    # grow with NET_CLONES (a copy always keeps the shape it used last).
    _SHAPE_PIXELS = 3_200_000

    def __init__(self, spec: NetSpec, clones: int = 1, threads: int = 1) -> None:
        self.spec = spec
        cv2.setNumThreads(threads)
        t0 = time.perf_counter()

        def new_detector() -> cv2.FaceDetectorYN:
            return cv2.FaceDetectorYN.create(str(spec.files["weights"]), "", (320, 320), 0.5,
                                             self._NMS_IOU, self._TOP_K)

        def create() -> cv2.FaceDetectorYN:
            # The detector made here to check the file serves the first shape any copy needs
            # (pop is atomic, so copies in other threads can't both take it).
            try:
                return checked.pop()
            except IndexError:
                return new_detector()

        try:
            checked = [new_detector()]
        except cv2.error as exc:
            raise ModelError(f"net {spec.key!r} failed to load from {spec.files['weights']}: "
                             f"{exc.msg if hasattr(exc, 'msg') else exc}; {FIX}") from None
        self.load_ms = (time.perf_counter() - t0) * 1000
        self._free: queue.SimpleQueue[DetectorsByShape] = queue.SimpleQueue()
        for _ in range(clones):
            self._free.put(DetectorsByShape(create, self._SHAPE_PIXELS // clones))
        self._clones = clones
        self.warm_ms = 0.0

    def warm(self) -> None:
        """One small pass per copy at load time, so the first request pays no lazy initialisation
        (`service.warm_up` then runs a 640x480 photo through the pipeline)."""
        t0 = time.perf_counter()
        for _ in range(self._clones):
            self.forward(np.zeros((64, 64, 3), np.uint8), 0.5)
        self.warm_ms = (time.perf_counter() - t0) * 1000

    def forward(self, image: np.ndarray, min_confidence: float) -> list[Detection]:
        """Faces in a HxWx3 (or HxW grey) uint8 BGR image at its own size, in its pixels."""
        if image.ndim == 2:
            image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
        height, width = image.shape[:2]
        if height < 1 or width < 1:
            return []
        if min(height, width) <= self._MIN_SIDE // 2:
            # cv2.dnn 4.14 returns garbage for this graph when a side pads to only 32 px (a 1-cell
            # stride-32 map; onnxruntime agrees with libfacedetection there): pad with zeros to 64.
            image = cv2.copyMakeBorder(image, 0, max(0, self._MIN_SIDE - height), 0, max(0, self._MIN_SIDE - width),
                                       cv2.BORDER_CONSTANT, value=0)
            height, width = image.shape[:2]
        detectors = self._free.get()
        try:
            detector = detectors.get(width, height)
            detector.setScoreThreshold(min_confidence)
            _, rows = detector.detect(np.ascontiguousarray(image, np.uint8))
        finally:
            self._free.put(detectors)
        if rows is None:
            return []
        return [Detection(x, y, x + w, y + h, score, tuple(zip(points[0::2], points[1::2], strict=True)))
                for x, y, w, h, *points, score in rows.tolist()]

    def detect(self, image: np.ndarray, min_confidence: float, detail: str = "auto",
               fine_side: int = 2048) -> list[Detection]:
        """Detections (x1, y1, x2, y2, confidence, landmarks) in pixels of `image`, unclipped.

        Landmarks: 5 (x, y) points in image pixels, right eye, left eye, nose tip, right
        and left mouth corner (the subject's right first, i.e. the image's left).
        """
        return detect_at_detail(image, self.forward, min_confidence, detail, fine_side)


class SoftmaxClassifier(_CvAdapter):
    """Adapter for nets whose output is a softmax over labels or values."""

    def _blob(self, chips: list[np.ndarray]) -> np.ndarray:
        inp = self.spec.input
        return cv2.dnn.blobFromImages(chips, inp["scale"], self.spec.input_size, tuple(inp["mean"]),
                                      swapRB=inp["color_order"] == "RGB", crop=False)

    def predict(self, chips: list[np.ndarray]) -> np.ndarray:
        """Outputs [N, K] for N BGR chips already at the net's input size, one forward each."""
        return np.concatenate([self.net.forward(self._blob([chip])).reshape(1, -1) for chip in chips])

    def predict_with_mirror(self, chips: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """Outputs [N, K] for N BGR chips already at the net's input size, and [N, K] for their mirror images.

        One forward per chip and its mirror (a batch of 2), not one batch of every face:
        cv2.dnn re-allocates a net's buffers whenever the batch size changes, so with face
        counts varying per photo a batch cost 2.36 ms/face against 2.06 one at a time, and a
        batch of 12 (6 faces and mirrors) cost more per face than 6 batches of 2
        (docs/decisions.md, "Attribute nets"). A fixed batch of 2 costs 8-14 % less than 2 forwards.
        """
        pairs = np.stack([self.net.forward(self._blob([chip, cv2.flip(chip, 1)])).reshape(2, -1) for chip in chips])
        return pairs[:, 0], pairs[:, 1]


class AgeGenderRegressor(SoftmaxClassifier):
    """Adapter for face-api.js's AgeGenderNet (models/convert_agegender.py): (years, p(male), p(female)) per chip.

    The graph normalises its own input, so chips go in as RGB 0-255 at the net's size.
    """

    def _blob(self, chips: list[np.ndarray]) -> np.ndarray:
        return cv2.dnn.blobFromImages(chips, 1.0, self.spec.input_size, swapRB=True, crop=False)


class ShapePredictor:
    """Adapter for a dlib landmark model converted to arrays (handler/landmarks.py), e.g. the 5-point face model.

    One copy whatever `clones` says: it holds only read-only arrays, so threads share it.
    """

    def __init__(self, spec: NetSpec, clones: int = 1) -> None:
        self.spec = spec
        t0 = time.perf_counter()
        try:
            self._model = ShapeModel(spec.files["weights"])
        except (OSError, KeyError, ValueError, zipfile.BadZipFile) as exc:
            raise ModelError(f"net {spec.key!r} failed to load from {spec.files['weights']}: {exc}; {FIX}") from None
        self.load_ms = (time.perf_counter() - t0) * 1000
        self.warm_ms = 0.0

    def warm(self) -> None:
        t0 = time.perf_counter()
        self.landmarks(np.zeros((64, 64, 3), np.uint8), [(8, 8, 56, 56)])
        self.warm_ms = (time.perf_counter() - t0) * 1000

    def landmarks(self, image: np.ndarray, rects: list[tuple[int, int, int, int]]) -> np.ndarray:
        """(faces, parts, 2) integer points for the faces in `rects` (left, top, right, bottom) of a BGR image."""
        return self._model.predict(image, rects)


ADAPTERS = {"yunet_detector": YuNetDetector, "softmax_classifier": SoftmaxClassifier,
            "softmax_regressor": SoftmaxClassifier, "shape_predictor": ShapePredictor,
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


def load_net(spec: NetSpec, clones: int = 1, threads: int = 1) -> Any:
    """One net's adapter, its files checked against the manifest's sizes (not yet warmed)."""
    if spec.adapter not in ADAPTERS:
        raise ModelError(f"net {spec.key!r} names unknown adapter {spec.adapter!r}")
    verify_files(spec)
    return (YuNetDetector(spec, clones, threads) if spec.adapter == "yunet_detector"
            else ADAPTERS[spec.adapter](spec, clones))


def load_models(model_dir: Path, on_loaded: Any = None, clones: int = 1, threads: int = 1) -> Models:
    """Check, load and warm every net in the manifest (`clones` copies of each cv2 net and detector, `threads`
    OpenCV's thread count), then its calibration; `on_loaded(net)` is called per net."""
    nets = {}
    for key, spec in read_manifest(model_dir).items():
        adapter = load_net(spec, clones, threads)
        adapter.warm()
        if on_loaded:
            on_loaded(adapter)
        nets[key] = adapter
    return Models(nets, calibration.load(model_dir))
