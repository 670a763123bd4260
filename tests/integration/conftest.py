from __future__ import annotations

import pytest
from servers import functions_framework


@pytest.fixture(scope="session")
def http_server() -> str:
    """functions-framework serving the HTTP target on 127.0.0.1 (one process for the session)."""
    with functions_framework("http_analyze") as base:
        yield base
