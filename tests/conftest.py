"""Session fixtures shared by every test folder, and the `shared` marker's skip."""

from __future__ import annotations

import pytest
from helpers import SHARED, jpeg, tiled


def pytest_runtest_setup(item: pytest.Item) -> None:
    """Tests marked `shared` skip, saying why, where ../shared is absent (a fresh clone); CI has it."""
    if item.get_closest_marker("shared") and not SHARED.is_dir():
        pytest.skip(f"{SHARED} not found: the shared data set (../shared) is only on CI and dev machines")


@pytest.fixture(scope="session")
def four_faces_jpeg() -> bytes:
    """Four faces (two women, two men) tiled into one JPEG."""
    return jpeg(tiled(["astronaut.png", "camera.png", "astronaut.png", "camera.png"], size=480))
