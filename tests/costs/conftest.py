from __future__ import annotations

import pytest

from jupyter_ext.costs.catalog import PriceCatalog, packaged_snapshot
from jupyter_ext.costs.db import make_engine
from jupyter_ext.costs.ledger import Ledger


@pytest.fixture
def db_url(tmp_path):
    return f"sqlite:///{tmp_path / 'ledger.sqlite'}"


@pytest.fixture
def engine(db_url):
    eng = make_engine(db_url)
    yield eng
    eng.dispose()


@pytest.fixture
def ledger(engine):
    return Ledger(engine)


@pytest.fixture(scope="session")
def catalog():
    return PriceCatalog(packaged_snapshot())


@pytest.fixture(autouse=True)
def _isolated_state(tmp_path, monkeypatch):
    """Never read or write a real state dir; the packaged snapshot is the default."""
    monkeypatch.setenv("LENS_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.delenv("LENS_PRICES_FILE", raising=False)
    monkeypatch.delenv("LENS_COSTS_DB_URL", raising=False)
    monkeypatch.delenv("LENS_DB_URL", raising=False)
