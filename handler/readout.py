"""The readout vocabulary: what a face's numbers are called in the answer.

Age buckets, the stable issue codes and the rules that raise them, and the human label. The answer,
the drawn labels (annotate), the job facts, the evaluation and the tools all speak it; the analysis
(pipeline.py) fills the numbers in.
"""

from __future__ import annotations

from itertools import pairwise

import numpy as np

from handler.calibration import Calibration
from handler.face import Face
from handler.options import Options

# The classic Adience age buckets. Years between two buckets go to the nearer one.
AGE_BUCKETS = ((0, 2), (4, 6), (8, 12), (15, 20), (25, 32), (38, 43), (48, 53), (60, 100))
_BUCKET_EDGES = [(hi + lo_next) / 2 for (_, hi), (lo_next, _) in pairwise(AGE_BUCKETS)]

# Below this the detector also fires on non-faces (scikit-image's cat scores 0.70).
_CONFIDENT_DETECTION = 0.75

UNCLEAR_LABEL = "Face unclear: use a sharp, frontal photo"
NOT_ANALYZED_LABEL = "Not analysed (face limit)"

# Stable issue codes: clients may translate them.
TOO_SMALL = "too_small"
BLURRY = "blurry"
LOW_GENDER_CONFIDENCE = "low_gender_confidence"
LOW_DETECTION_CONFIDENCE = "low_detection_confidence"
PARTLY_OUTSIDE = "partly_outside_image"
NOT_ANALYZED = "not_analyzed"
AGE_UNCERTAIN = "age_uncertain"
UNDEREXPOSED = "underexposed"
OVEREXPOSED = "overexposed"
LOW_CONTRAST = "low_contrast"
# Grey-level thresholds on the face box, chosen by the light study (docs/accuracy.md, "Light and old scans"):
# beyond them the age MAE and the interval's coverage degrade clearly on transformed UTKFace-dev faces,
# while at most 0.3 % of the untransformed faces are flagged.
UNDEREXPOSED_BELOW = 40.0
OVEREXPOSED_FROM = 225.0
LOW_CONTRAST_BELOW = 18.0
# Issues that make the age and gender untrustworthy, not just less certain.
_UNTRUSTED = {TOO_SMALL, BLURRY}


def bucket_index(years: float) -> int:
    """Index in AGE_BUCKETS of the bucket for an age in years (a gap goes to the nearer bucket)."""
    return int(np.searchsorted(_BUCKET_EDGES, years, side="right"))


def age_bucket(years: float) -> str:
    """The classic bucket for an age in years, e.g. 27.4 -> '(25-32)'."""
    lo, hi = AGE_BUCKETS[bucket_index(years)]
    return f"({lo}-{hi})"


def quality_issues(face: Face, options: Options, calibration: Calibration) -> list[str]:
    """Stable issue codes for one analysed face."""
    issues = []
    if min(face.box["width"], face.box["height"]) < options.min_face_px:
        issues.append(TOO_SMALL)
    if face.sharpness < options.min_sharpness:
        issues.append(BLURRY)
    if face.detection_confidence < _CONFIDENT_DETECTION:
        issues.append(LOW_DETECTION_CONFIDENCE)
    if face.inside < 0.85:
        issues.append(PARTLY_OUTSIDE)
    if face.gender is not None and face.gender["value"] == "unknown":
        issues.append(LOW_GENDER_CONFIDENCE)
    # Children are not age_uncertain: their intervals are the narrowest (1-8 years); only their gender is withheld.
    if face.age is not None and interval_width(face) > calibration.max_useful_width:
        issues.append(AGE_UNCERTAIN)
    mean, std = face.luma
    if mean < UNDEREXPOSED_BELOW:
        issues.append(UNDEREXPOSED)
    elif mean >= OVEREXPOSED_FROM:
        issues.append(OVEREXPOSED)
    elif std < LOW_CONTRAST_BELOW:
        issues.append(LOW_CONTRAST)
    return issues


def is_child(face: Face, calibration: Calibration) -> bool:
    """Predicted younger than the calibration's child age: gender is withheld."""
    return face.age["years"] < calibration.child_below_years


def interval_width(face: Face) -> int:
    """Width in years of the face's calibrated age interval."""
    return face.age["interval"]["high"] - face.age["interval"]["low"]


def face_label(face: Face, calibration: Calibration) -> str:
    """Human label, e.g. 'Male, (25-32)'; an instruction when the face can't be trusted.

    Where the age is uncertain the label says so: a child's gender is never guessed
    ('Child, gender unclear, (4-6)'), and a too-wide interval replaces the bucket
    ('Male, age uncertain (41-72)').
    """
    if not face.analyzed:
        return NOT_ANALYZED_LABEL
    if _UNTRUSTED & set(face.issues):
        return UNCLEAR_LABEL
    gender = face.gender["value"]
    prefix = "Gender unclear" if gender == "unknown" else gender.capitalize()
    if is_child(face, calibration):
        return f"Child, gender unclear, {face.age['bucket']}"
    if AGE_UNCERTAIN in face.issues:
        return f"{prefix}, age uncertain ({face.age['interval']['low']}-{face.age['interval']['high']})"
    return f"{prefix}, {face.age['bucket']}"
