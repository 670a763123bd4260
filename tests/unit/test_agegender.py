"""The converted face-api.js AgeGenderNet (models/convert_agegender.py) against face-api.js's own outputs.

tests/data/agegender_reference.json holds what the JavaScript package computed under node for a few
inputs (evaluation/agegender_reference.py); here the ONNX runs in cv2.dnn through our adapter, no node.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from handler.models import AgeGenderRegressor, read_manifest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "evaluation"))
from agegender_reference import crop_input  # noqa: E402

REFERENCE = json.loads((ROOT / "tests" / "data" / "agegender_reference.json").read_text())["cases"]


@pytest.fixture(scope="module")
def net() -> AgeGenderRegressor:
    return AgeGenderRegressor(read_manifest(ROOT / "models")["agegender"])


def rebuild(case: dict) -> np.ndarray:
    """The case's RGB uint8 input, rebuilt as evaluation/agegender_reference.py made it."""
    if case["kind"] == "noise":
        return np.random.default_rng(case["seed"]).integers(0, 256, (112, 112, 3), dtype=np.uint8)
    return crop_input(case["photo"], *case["box"], case["mirrored"])


@pytest.mark.parametrize("case", REFERENCE, ids=lambda c: f"{c['kind']}-{c.get('photo', '')}-{c.get('mirrored', '')}")
def test_onnx_reproduces_face_api_js(net: AgeGenderRegressor, case: dict) -> None:
    rgb = rebuild(case)
    assert hashlib.sha256(rgb.tobytes()).hexdigest() == case["input_sha256"], "the input itself changed"
    age, p_male, p_female = net.predict([np.ascontiguousarray(rgb[:, :, ::-1])])[0]  # the adapter takes BGR
    assert age == pytest.approx(case["age"], abs=0.01)
    assert p_male == pytest.approx(case["p_male"], abs=1e-4)
    assert p_male + p_female == pytest.approx(1.0, abs=1e-5)


def test_adapter_batches_one_chip_at_a_time(net: AgeGenderRegressor) -> None:
    chips = [cv2.cvtColor(rebuild(case), cv2.COLOR_RGB2BGR) for case in REFERENCE[:3]]
    together = net.predict(chips)
    assert together.shape == (3, 3)
    np.testing.assert_allclose(together[1], net.predict(chips[1:2])[0], rtol=1e-6)
