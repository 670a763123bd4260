"""Session fixtures shared by every test folder."""

from __future__ import annotations

import pytest
from helpers import jpeg, tiled


@pytest.fixture(scope="session")
def four_faces_jpeg() -> bytes:
    """Four faces (two women, two men) tiled into one JPEG."""
    return jpeg(tiled(["astronaut.png", "camera.png", "astronaut.png", "camera.png"], size=480))
