"""Shared fixtures. Infrastructure that is missing skips a test locally, but
fails it under CI (CI=true), where `make test` must have installed it."""

from __future__ import annotations

import os

import pytest

from tests.support import moto as moto_support

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def require(condition: bool, why: str) -> None:
    """Skip (locally) or fail (in CI) when infrastructure is missing."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"required infrastructure missing in CI: {why}")
    pytest.skip(why)


@pytest.fixture(scope="session")
def moto_endpoint():
    """A moto standalone server shared by the session; tests use their own buckets/queues."""
    with moto_support.moto_server() as url:
        yield url


@pytest.fixture
def aws_env(moto_endpoint, monkeypatch):
    """Point boto3 at moto through the environment only (no patching of boto3)."""
    for key, value in moto_support.aws_env(moto_endpoint).items():
        monkeypatch.setenv(key, value)
    return moto_endpoint
