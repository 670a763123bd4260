"""A face as the analysis finds it, until the service builds the answer from it (`public()`).

Annotation and redaction take these records too, so nothing downstream rewrites the answer's dicts.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# YuNet's points, the subject's right first (so the image's left): the API's `landmarks` keys.
LANDMARKS = ("right_eye", "left_eye", "nose_tip", "mouth_right", "mouth_left")


@dataclass
class Face:
    """One face on its way through the pipeline; `public()` is what the API returns.

    Keeps what only the pipeline needs (the unclipped detector box, the share of
    it inside the image) out of the emitted dict, instead of private keys.
    """

    raw_box: tuple[float, float, float, float]  # detector box in image pixels, unclipped
    box: dict[str, int]  # clipped to the image
    detection_confidence: float
    inside: float  # share of the raw box's area inside the image
    sharpness: float = 0.0
    score: float = 0.0
    rank: int = 0
    analyzed: bool = False
    gender: dict | None = None
    age: dict | None = None
    issues: list[str] = field(default_factory=list)
    label: str = ""
    luma: tuple[float, float] = (128.0, 64.0)  # mean and standard deviation of the box's grey levels
    # The detector's 5 points in image pixels (handler.detection.Detection), in LANDMARKS order.
    landmarks: tuple[tuple[float, float], ...] | None = None

    def public_landmarks(self, scale: tuple[float, float] = (1.0, 1.0)) -> dict | None:
        """The 5 points by name, [x, y] in the answer's pixels (pixel centres map as (x + 0.5) * s - 0.5)."""
        if self.landmarks is None:
            return None
        sx, sy = scale
        return {name: [round((x + 0.5) * sx - 0.5, 1), round((y + 0.5) * sy - 0.5, 1)]
                for name, (x, y) in zip(LANDMARKS, self.landmarks, strict=True)}

    def public(self, box: dict | None = None, scale: tuple[float, float] = (1.0, 1.0)) -> dict:
        """The face as the API reports it; `box` in the answer's pixels when they differ from the analysis's,
        and `scale` (answer pixels per analysis pixel, x and y) for the landmarks."""
        return {
            "box": self.box if box is None else box,
            "landmarks": self.public_landmarks(scale),
            "detection_confidence": round(self.detection_confidence, 4),
            "sharpness": round(self.sharpness, 4),
            "score": round(self.score, 4),
            "rank": self.rank,
            "analyzed": self.analyzed,
            "gender": self.gender,
            "age": self.age,
            "quality": {"ok": not self.issues, "issues": self.issues},
            "label": self.label,
        }
