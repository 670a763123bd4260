"""analyze(image, models, options) -> faces: detect, rank, chip, attributes, then the readout's quality and label.

Pure functions over numpy arrays and the loaded nets: no I/O, no globals. The words the answer uses
(buckets, issue codes, labels) are handler/readout.py's; the face record is handler/face.py's.
"""

from __future__ import annotations

import time
from typing import Any

import cv2
import numpy as np

from handler.calibration import AgeIntervals, Calibration
from handler.chips import aligned_chips
from handler.face import Face
from handler.models import Models
from handler.options import Options
from handler.readout import NOT_ANALYZED, age_bucket, face_label, quality_issues

# Variance of the Laplacian on a 64x64 grey chip, mapped to 0..1 by v / (v + K):
# K is the variance of a face that is just acceptably sharp (sharpness 0.5).
_SHARPNESS_SIZE = 64
_SHARPNESS_K = 100.0
# Ranking weights: detector confidence matters more than sharpness.
_W_CONFIDENCE, _W_SHARPNESS = 0.6, 0.4


def detect_faces(image: np.ndarray, models: Models, min_confidence: float, detail: str = "auto",
                 max_side: int = 2048) -> list[Face]:
    """Detector boxes clipped to the image, degenerate ones dropped.

    (res10 needed a rule against a "ghost" box from a face's centre off the image's corner; YuNet
    gives none: 1,080 padded UTKFace-dev faces gave exactly 1,080 detections.)
    """
    height, width = image.shape[:2]
    detections = models["detector"].detect(image, min_confidence, detail, max_side)
    faces = []
    for x1, y1, x2, y2, confidence, landmarks in detections:
        cx1, cy1 = max(0, round(x1)), max(0, round(y1))
        cx2, cy2 = min(width, round(x2)), min(height, round(y2))
        if cx2 - cx1 < 2 or cy2 - cy1 < 2:
            continue
        raw_area = max(x2 - x1, 1e-6) * max(y2 - y1, 1e-6)
        faces.append(Face(raw_box=(x1, y1, x2, y2), box={"x": cx1, "y": cy1, "width": cx2 - cx1, "height": cy2 - cy1},
                          detection_confidence=confidence, inside=(cx2 - cx1) * (cy2 - cy1) / raw_area,
                          landmarks=landmarks))
    return faces


def face_luma(image: np.ndarray, box: dict) -> tuple[float, float]:
    """Mean and standard deviation of the grey level (0-255) inside a face box: its exposure and contrast."""
    grey = cv2.cvtColor(image[box["y"]:box["y"] + box["height"], box["x"]:box["x"] + box["width"]],
                        cv2.COLOR_BGR2GRAY)
    mean, std = cv2.meanStdDev(grey)
    return float(mean[0, 0]), float(std[0, 0])


def sharpness(image: np.ndarray, box: dict) -> float:
    """Variance of the Laplacian of the face, on a fixed-size grey copy, normalised to 0..1."""
    crop = image[box["y"]:box["y"] + box["height"], box["x"]:box["x"] + box["width"]]
    grey = cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY)
    grey = cv2.resize(grey, (_SHARPNESS_SIZE, _SHARPNESS_SIZE), interpolation=cv2.INTER_AREA)
    variance = float(cv2.Laplacian(grey, cv2.CV_64F).var())
    return variance / (variance + _SHARPNESS_K)


def rank_faces(image: np.ndarray, faces: list[Face]) -> list[Face]:
    """Score each face by confidence and normalised sharpness; return them best first, ranked."""
    for face in faces:
        face.sharpness = sharpness(image, face.box)
        face.score = _W_CONFIDENCE * face.detection_confidence + _W_SHARPNESS * face.sharpness
    faces.sort(key=lambda f: f.score, reverse=True)
    for rank, face in enumerate(faces, 1):
        face.rank = rank
    return faces


def age_estimate(years: float, intervals: AgeIntervals, spread: float = 0.0) -> dict:
    """The age in years, its bucket and its calibrated interval (wider the more chip and mirror disagree)."""
    low, high = intervals.interval(years, spread)
    return {"years": round(years, 1), "bucket": age_bucket(years),
            "interval": {"low": low, "high": high, "coverage": intervals.coverage}}


def gender_estimate(p_male_raw: float, years: float, calibration: Calibration, min_confidence: float) -> dict:
    """Calibrated gender; `unknown` below `min_confidence` and for faces predicted to be children."""
    p_male = float(calibration.gender.p_male(p_male_raw))
    best, confidence = ("male", p_male) if p_male >= 0.5 else ("female", 1 - p_male)
    decided = confidence >= min_confidence and years >= calibration.child_below_years
    return {"value": best if decided else "unknown", "confidence": round(confidence, 4)}


def mirror_outputs(net: Any, chips: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """The net's outputs for each chip and for its mirror image, at the net's input size.

    A chip larger than the input is shrunk with INTER_AREA: on UTKFace-dev the gender
    net read a 64 px chip shrunk to 32 px as well as dlib's own 32 px chip (89.5 % vs
    89.0 %), and with the mirror 90.1 % (`make eval`), so one chip serves every net.
    """
    size = net.spec.input_size
    views = [chip if chip.shape[1::-1] == size else cv2.resize(chip, size, interpolation=cv2.INTER_AREA)
             for chip in chips]
    return net.predict_with_mirror(views)


def mirror_averaged(net: Any, chips: list[np.ndarray]) -> np.ndarray:
    """The net's outputs averaged over each chip and its mirror image (see `mirror_outputs`)."""
    chip, mirror = mirror_outputs(net, chips)
    return (chip + mirror) / 2


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-7, 1 - 1e-7)
    return np.log(p / (1 - p))


def attribute_outputs(image: np.ndarray, faces: list[Face],
                      models: Models) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per face, the uncalibrated p(male), the age in years and its mirror spread, from one aligned chip and its mirror.

    Age is face-api.js's AgeGenderNet alone; gender the mean of its log-odds of male and the Cydral
    gender net's, which Platt scaling then calibrates. agegender_study.py (a finished study) chose these on
    UTKFace-dev and on a FairFace sample neither net was trained on (docs/accuracy.md): on FairFace
    the Cydral net is the better gender net, face-api.js's far the better age net, and the mean
    log-odds beat either net's alone. The mirror spread, how many years the age net's readings of
    the chip and of its mirror disagree, is the face's difficulty: the age interval widens with it.
    """
    agegender = models["agegender"]
    chips = aligned_chips(image, [face.raw_box for face in faces], models["landmarks"],
                          agegender.spec.input_size[0], agegender.spec.input["chip_padding"])
    return chip_outputs(chips, models)


def chip_outputs(chips: list[np.ndarray], models: Models) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`attribute_outputs` for faces' aligned chips (the agegender net's size and padding)."""
    agegender, gender_net = models["agegender"], models["gender"]
    # Both nets see the chip and its mirror. Dropping face-api.js's mirror forward would bring the attribute
    # step from ~1.3-1.6x back to ~1.0x its pre-issue-19 cost, but costs accuracy (docs/accuracy.md, "Cost").
    chip, mirror = mirror_outputs(agegender, chips)  # (years, p(male), p(female)) each
    both = (chip + mirror) / 2
    cydral = mirror_averaged(gender_net, chips)[:, gender_net.spec.extra["labels"].index("male")]
    p_male = 1 / (1 + np.exp(-(_logit(both[:, 1]) + _logit(cydral)) / 2))
    spread = np.abs(chip[:, 0] - mirror[:, 0])
    return p_male.astype(np.float64), both[:, 0].astype(np.float64), spread.astype(np.float64)


def attributes(image: np.ndarray, faces: list[Face], models: Models, options: Options) -> None:
    """Calibrated gender and age for each face (see `attribute_outputs`)."""
    if not faces:
        return
    p_male, years, spread = attribute_outputs(image, faces, models)
    for face, p, y, s in zip(faces, p_male, years, spread):
        face.luma = face_luma(image, face.box)
        face.age = age_estimate(float(y), models.calibration.age, float(s))
        face.gender = gender_estimate(float(p), face.age["years"], models.calibration, options.min_gender_confidence)


def analyze_faces(image: np.ndarray, models: Models, options: Options,
                  timings: dict[str, float] | None = None) -> list[Face]:
    """All faces in a BGR image as pipeline records, best first; the top `max_faces` get age, gender and quality."""
    timings = {} if timings is None else timings
    image = np.ascontiguousarray(image)  # dlib refuses strided views such as crops
    t0 = time.perf_counter()
    faces = rank_faces(image, detect_faces(image, models, options.min_confidence, options.detail,
                                           options.detect_max_side))
    t1 = time.perf_counter()
    analysed, skipped = faces[:options.max_faces], faces[options.max_faces:]
    attributes(image, analysed, models, options)
    timings["detect"] = (t1 - t0) * 1000
    timings["attributes"] = (time.perf_counter() - t1) * 1000
    for face in analysed:
        face.analyzed = True
        face.issues = quality_issues(face, options, models.calibration)
    for face in skipped:
        face.issues = [NOT_ANALYZED]
    for face in faces:
        face.label = face_label(face, models.calibration)
    return faces


def analyze(image: np.ndarray, models: Models, options: Options, timings: dict[str, float] | None = None) -> list[dict]:
    """All faces in a BGR image as the API reports them, best first (see `analyze_faces`)."""
    return [face.public() for face in analyze_faces(image, models, options, timings)]
