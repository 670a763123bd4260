"""The converted HSE FaceRes net (models/convert_faceres.py) against its own tf.js graph's outputs.

tests/data/faceres_reference.json holds what tf.js computed under node for a few inputs
(tools/faceres_reference.py); here the ONNX runs in cv2.dnn, no node. FaceRes is a measured
candidate, not a shipped net (docs/decisions.md): its ONNX is built on demand with
`python models/fetch.py --section candidates --dest build/candidates` (a 145 MB npm tarball),
and these tests skip until it is there.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tools"))
from faceres_reference import crop_input  # noqa: E402

REFERENCE = json.loads((ROOT / "tests" / "data" / "faceres_reference.json").read_text())
ONNX = ROOT / "build" / "candidates" / "faceres-deep.onnx"


@pytest.fixture(scope="module")
def net() -> cv2.dnn.Net:
    if not ONNX.is_file():
        pytest.skip(f"{ONNX.relative_to(ROOT)} not built: python models/fetch.py --section candidates "
                    "--dest build/candidates")
    return cv2.dnn.readNetFromONNX(str(ONNX))


def rebuild(case: dict, size: int) -> np.ndarray:
    """The case's BGR uint8 input, rebuilt as tools/faceres_reference.py made it."""
    if case["kind"] == "noise":
        return np.random.default_rng(case["seed"]).integers(0, 256, (size, size, 3), dtype=np.uint8)
    return crop_input(case["photo"], *case["box"], case["mirrored"], size)


@pytest.mark.parametrize("case", REFERENCE["cases"],
                         ids=lambda c: f"{c['kind']}-{c.get('photo', '')}-{c.get('mirrored', '')}")
def test_onnx_reproduces_tfjs(net: cv2.dnn.Net, case: dict) -> None:
    bgr = rebuild(case, REFERENCE["size"])
    assert hashlib.sha256(bgr.tobytes()).hexdigest() == case["input_sha256"], "the input itself changed"
    net.setInput(cv2.dnn.blobFromImage(bgr))  # BGR 0-255: the graph subtracts the means
    male_logit, years = net.forward()[0]
    assert 1 / (1 + np.exp(-male_logit)) == pytest.approx(case["p_male"], abs=1e-5)
    assert years == pytest.approx(case["age"], abs=1e-3)


def test_one_file_serves_smaller_inputs_and_batches(net: cv2.dnn.Net) -> None:
    """Every input side that is a multiple of 32 gets the same TF 'same' pads; a batch is per-image."""
    bgr = rebuild(REFERENCE["cases"][1], REFERENCE["size"])
    small = cv2.resize(bgr, (128, 128), interpolation=cv2.INTER_AREA)
    net.setInput(cv2.dnn.blobFromImages([small, cv2.flip(small, 1)]))
    both = net.forward()
    net.setInput(cv2.dnn.blobFromImage(small))
    np.testing.assert_allclose(both[0], net.forward()[0], rtol=1e-4, atol=1e-4)
    assert both.shape == (2, 2)


def test_candidate_files_match_their_pins(net: cv2.dnn.Net) -> None:
    """What `fetch.py --section candidates` built is what the manifest pins (and the shipped nets never see it)."""
    check = subprocess.run([sys.executable, "models/fetch.py", "--check", "--section", "candidates", "--dest",
                            str(ONNX.parent)], cwd=ROOT, capture_output=True, text=True)
    assert check.returncode == 0, check.stderr
    manifest = json.loads((ROOT / "models" / "manifest.json").read_text())
    assert not set(manifest["candidates"]) & set(manifest["nets"])
