"""Settings are validated once, with messages naming the variable."""

from __future__ import annotations

import pytest

from handler.config import load_settings
from handler.errors import ConfigError


def test_defaults() -> None:
    settings = load_settings({})
    assert settings.min_confidence == 0.75  # not 0.5: the README's Decisions say why (a cat is a face at 0.5)
    assert settings.max_faces == 100
    assert settings.min_gender_confidence == 0.8  # a calibrated probability: see the README's Accuracy
    assert settings.model_dir.is_absolute()
    assert settings.output_prefix == "results/"
    assert settings.write_redacted is False
    assert settings.net_clones == 1  # a lock: Lambda runs one request at a time
    assert load_settings({"WRITE_REDACTED": "TRUE"}).write_redacted is True


def test_relative_model_dir_resolves_to_absolute(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert load_settings({"MODEL_DIR": "models"}).model_dir == tmp_path / "models"


@pytest.mark.parametrize("env, name", [
    ({"MAX_FACES": "0"}, "MAX_FACES"),
    ({"MAX_FACES": "ten"}, "MAX_FACES"),
    ({"MIN_CONFIDENCE": "1.5"}, "MIN_CONFIDENCE"),
    ({"MAX_PIXELS": "-1"}, "MAX_PIXELS"),
    ({"JPEG_QUALITY": "101"}, "JPEG_QUALITY"),
    ({"LOG_LEVEL": "LOUD"}, "LOG_LEVEL"),
    ({"WRITE_REDACTED": "yes please"}, "WRITE_REDACTED"),
    ({"NET_CLONES": "0"}, "NET_CLONES"),
    ({"OUTPUT_PREFIX": ""}, "OUTPUT_PREFIX"),
    ({"OUTPUT_PREFIX": "uploads/results"}, "OUTPUT_PREFIX"),
])
def test_bad_values_name_the_variable(env: dict, name: str) -> None:
    with pytest.raises(ConfigError, match=name):
        load_settings(env)
