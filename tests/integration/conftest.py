from __future__ import annotations

import boto3
import pytest
from servers import functions_framework, moto_server

from handler import aws


@pytest.fixture(scope="session")
def http_server() -> str:
    """functions-framework serving the HTTP target on 127.0.0.1 (one process for the session)."""
    with functions_framework("http_analyze") as base:
        yield base


@pytest.fixture(scope="module")
def s3():
    """moto in server mode on 127.0.0.1, with the handler's S3 client pointed at it; yields a boto3 client."""
    env = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}
    mp = pytest.MonkeyPatch()
    with moto_server() as endpoint:
        for k, v in {**env, "AWS_ENDPOINT_URL_S3": endpoint}.items():
            mp.setenv(k, v)
        aws._s3_client = None  # the handler builds its client from the environment
        yield boto3.client("s3", endpoint_url=endpoint)
    aws._s3_client = None
    mp.undo()
