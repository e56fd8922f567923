"""50 concurrent holds against a budget that fits 10 accept exactly 10."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

from jupyter_ext.costs.db import make_engine
from jupyter_ext.costs.ledger import BudgetExceeded, Ledger

AMOUNT = 1_210_000


def _race(ledgers, n=50):
    barrier = threading.Barrier(n)

    def one(i):
        ledger = ledgers[i % len(ledgers)]
        barrier.wait()
        try:
            return ledger.hold(["user:racer", "group:lab"], AMOUNT, "servers", f"spawn-{i}")
        except BudgetExceeded:
            return None

    with ThreadPoolExecutor(max_workers=n) as pool:
        return list(pool.map(one, range(n)))


def test_50_concurrent_holds_exactly_10_fit(ledger):
    ledger.set_budget("user:racer", 10 * AMOUNT + AMOUNT - 1)  # room for 10, not 11
    results = _race([ledger])
    accepted = [r for r in results if r is not None]
    assert len(accepted) == 10 and len(set(accepted)) == 10
    s = ledger.summary("user:racer")
    assert s.held_micro == 10 * AMOUNT and s.available_micro == AMOUNT - 1
    assert ledger.verify() == []


def test_two_engines_on_one_database_still_exactly_10(db_url, engine):
    """Like two service processes sharing the SQLite file."""
    other = make_engine(db_url)
    try:
        ledgers = [Ledger(engine), Ledger(other)]
        ledgers[0].set_budget("group:lab", 10 * AMOUNT)
        results = _race(ledgers)
        accepted = [r for r in results if r is not None]
        assert len(accepted) == 10
        # charge them concurrently too: each is charged once, the rest refunded
        with ThreadPoolExecutor(max_workers=10) as pool:
            list(pool.map(lambda h: ledgers[h % 2].charge(h, AMOUNT // 2), accepted))
        s = ledgers[1].summary("group:lab")
        assert (s.held_micro, s.spent_micro) == (0, 10 * (AMOUNT // 2))
        assert s.budget_micro == s.available_micro + s.held_micro + s.spent_micro
        assert ledgers[0].verify() == []
    finally:
        other.dispose()


def test_reads_do_not_wait_for_a_writer(ledger):
    """Summaries (spawn form, %costs, /metrics) read a snapshot while a write is open."""
    import time

    ledger.set_budget("user:a", 10**9)
    inside = threading.Event()
    release = threading.Event()

    def writer():
        with ledger.transaction() as conn:
            ledger.record("user:a", 5, "jobs", "x", conn=conn)
            inside.set()
            release.wait(10)

    t = threading.Thread(target=writer)
    t.start()
    try:
        assert inside.wait(10)
        t0 = time.perf_counter()
        assert ledger.summary("user:a").spent_micro == 0  # the uncommitted write is not seen
        assert time.perf_counter() - t0 < 2
    finally:
        release.set()
        t.join()
    assert ledger.summary("user:a").spent_micro == 5
