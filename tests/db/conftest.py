from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest

FIXTURE = Path(__file__).parent / "data" / "lens-bb3bb8c.sqlite"
# What tests/db/make_fixture.py put in (its inputs, not its outputs).
AT = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
PASSWORDS = {"alice": "alice-fixture-pw-1", "bob": "bob-fixture-pw-2", "root": "root-fixture-pw-3",
             "ws1-01": "seat-fixture-pw-01"}


@pytest.fixture(autouse=True)
def _isolated_state(tmp_path, monkeypatch):
    """Every lens process here resolves its database from this test's state dir."""
    monkeypatch.setenv("LENS_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.delenv("LENS_DB_URL", raising=False)
    monkeypatch.delenv("LENS_COSTS_DB_URL", raising=False)


@pytest.fixture
def bb3_copy(tmp_path) -> Path:
    """A copy of the database lens made at bb3bb8c (unversioned)."""
    path = tmp_path / "old" / "lens.sqlite"
    path.parent.mkdir()
    shutil.copyfile(FIXTURE, path)
    return path


@pytest.fixture
def service_env(monkeypatch):
    """What the hub gives a managed service (no hub is contacted at initialize)."""
    monkeypatch.setenv("JUPYTERHUB_API_TOKEN", "test-token")
    monkeypatch.setenv("JUPYTERHUB_CLIENT_ID", "service-lens")
    monkeypatch.setenv("JUPYTERHUB_API_URL", "http://127.0.0.1:9/hub/api")
    monkeypatch.setenv("JUPYTERHUB_SERVICE_PREFIX", "/services/lens/")
