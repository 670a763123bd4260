"""End-to-end checks on the shared in-the-wild photos (../shared/photos; skipped where absent)."""

from __future__ import annotations

import cv2
import pytest
from helpers import shared_or_skip

from handler.label_layout import plan
from handler.service import analyze_bytes

PHOTOS = ["girl1.jpg", "girl2.jpg", "kid1.jpg", "kid2.jpg", "man1.jpg", "man2.jpg", "woman1.jpg"]
EXPECTED_GENDER = {"girl": "female", "woman": "female", "man": "male"}
pytestmark = pytest.mark.shared


@pytest.mark.parametrize("name", PHOTOS)
def test_one_person_one_face_labelled_inside_the_image(name: str) -> None:
    data = (shared_or_skip("photos") / name).read_bytes()
    result = analyze_bytes(data).result
    (face,) = result["faces"]
    expected = EXPECTED_GENDER.get(name.split(".")[0].rstrip("0123456789"))
    if face["age"]["years"] < 13:
        # Children never get a gender (docs/accuracy.md): girl2 and both kids read as under 13.
        assert face["gender"]["value"] == "unknown" and face["label"].startswith("Child, gender unclear")
    elif expected:
        # Never a wrong gender; "unknown" where the calibrated probability is under MIN_GENDER_CONFIDENCE.
        assert face["gender"]["value"] in (expected, "unknown")
    size = (result["image"]["width"], result["image"]["height"])
    layout = plan([face["box"]], [face["label"]], size)
    text = layout.for_face(0)  # one person: the label itself beside the face, no numbers, no legend
    assert not layout.numbered and text.text == face["label"] and (layout.width, layout.height) == size
    assert 0 <= text.x and text.x + text.width <= size[0]
    assert 0 <= text.y and text.y + text.height <= size[1]


@pytest.mark.parametrize("name", PHOTOS)
def test_tight_crop_is_still_one_face(name: str) -> None:
    image = cv2.imread(str(shared_or_skip("photos") / name))
    (face,) = analyze_bytes(cv2.imencode(".png", image)[1].tobytes()).result["faces"]
    b = face["box"]
    crop = image[max(0, b["y"] - b["height"] // 4):b["y"] + b["height"] * 5 // 4,
                 max(0, b["x"] - b["width"] // 4):b["x"] + b["width"] * 5 // 4]
    assert analyze_bytes(cv2.imencode(".png", crop)[1].tobytes()).result["faces_detected"] == 1
