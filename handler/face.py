"""A face as the analysis finds it, until the service builds the answer from it (`public()`).

Annotation and redaction take these records too, so nothing downstream rewrites the answer's dicts.
"""

from __future__ import annotations

from dataclasses import dataclass, field


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
    # The detector's 5 points in image pixels (handler.detection.Detection), for chip alignment; not public.
    landmarks: tuple[tuple[float, float], ...] | None = None

    def public(self, box: dict | None = None) -> dict:
        """The face as the API reports it; `box` in the answer's pixels when they differ from the analysis's."""
        return {
            "box": self.box if box is None else box,
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
