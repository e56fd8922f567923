"""The same ledger on PostgreSQL: SELECT ... FOR UPDATE instead of BEGIN IMMEDIATE."""

from __future__ import annotations

import importlib.util
from concurrent.futures import ThreadPoolExecutor

import pytest

from jupyter_ext.costs.db import make_engine
from jupyter_ext.costs.ledger import BudgetExceeded, Ledger
from tests.conftest import require
from tests.costs.pg import pg_bindir, postgres_cluster
from tests.costs.test_concurrency import AMOUNT, _race


@pytest.fixture(scope="module")
def pg_url():
    require(pg_bindir() is not None, "PostgreSQL server binaries (Debian package postgresql)")
    require(importlib.util.find_spec("psycopg") is not None, "psycopg (pip: psycopg[binary])")
    with postgres_cluster() as url:
        yield url


@pytest.fixture
def pg_engine(pg_url):
    engine = make_engine(pg_url, pool_size=55, max_overflow=5)
    yield engine
    from jupyter_ext.db.migrate import drop_schema

    drop_schema(engine)
    engine.dispose()


def test_postgres_50_concurrent_holds_exactly_10(pg_engine):
    ledger = Ledger(pg_engine)
    ledger.set_budget("user:racer", 10 * AMOUNT)
    accepted = [h for h in _race([ledger]) if h is not None]
    assert len(accepted) == 10
    with ThreadPoolExecutor(max_workers=10) as pool:
        list(pool.map(lambda h: ledger.charge(h, AMOUNT // 3), accepted))
    s = ledger.summary("user:racer")
    assert s.budget_micro == s.available_micro + s.held_micro + s.spent_micro
    assert (s.held_micro, s.spent_micro) == (0, 10 * (AMOUNT // 3))
    assert ledger.summary("hub").spent_micro == 10 * (AMOUNT // 3)
    assert ledger.verify() == []


def test_postgres_basic_flow_and_refusal(pg_engine):
    ledger = Ledger(pg_engine)
    ledger.set_budget("group:lab", 2 * AMOUNT)
    h = ledger.hold(["user:a", "group:lab"], AMOUNT, "jobs", "j1")
    ledger.record(["user:a", "group:lab"], AMOUNT, "servers", "s1")
    with pytest.raises(BudgetExceeded, match="group:lab"):
        ledger.hold(["user:a", "group:lab"], 1, "dask", "d1")
    ledger.release(h)
    assert ledger.summary("group:lab").available_micro == AMOUNT
    assert ledger.verify() == []
