"""Production-profile services over real connections: Postgres (127.0.0.1:5432, or
``NIGHTSHIFT_TEST_POSTGRES_URL``) and an S3 endpoint served by moto's server mode on 127.0.0.1,
reached through boto3 as AWS would be. A test whose service is down is skipped with the command
that starts it, or fails under ``NIGHTSHIFT_REQUIRE_SERVICES=1`` (see tests/conftest.py)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from tests.conftest import free_port


@pytest.fixture(scope="session")
def s3_server() -> Iterator[dict[str, str]]:
    """A real HTTP S3 endpoint (moto server mode); yields the AWS_* variables to reach it."""
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    try:
        yield {
            "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
        }
    finally:
        server.stop()


@pytest.fixture
def s3_bucket(s3_server: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh bucket on the S3 endpoint, with this process's boto3 pointed at it."""
    import boto3

    for key, value in s3_server.items():
        monkeypatch.setenv(key, value)
    name = f"landing-{uuid.uuid4().hex[:8]}"
    boto3.client("s3").create_bucket(Bucket=name)
    return name
