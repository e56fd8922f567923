"""Ledger benchmark: 1,000 concurrent hold+charge operations.

Run: PYTHONPATH=. /tmp/venvtest/v/bin/python benchmarks/ledger.py [--ops 1000] [--threads 32] [--db URL]

Measured side by side in one run, on the same kind of database:
- lens: ``Ledger.hold`` then ``Ledger.charge`` (journal + balances, BEGIN IMMEDIATE on SQLite,
  SELECT ... FOR UPDATE on PostgreSQL), with a user and a group budget checked per hold;
- peer: a bare counter, one conditional ``UPDATE budgets SET used = used + x WHERE used + x <=
  amount`` per hold and one ``UPDATE`` per charge (what a hub without a ledger would do: no
  journal, no refunds, no per-category books).
It also runs an oversubscribed round (budget fits half of the holds) and checks that exactly
half are accepted and the books balance.
``--spawn-gate N`` then times N spawns of two full lens stacks side by side, with the budget
gate and without it (``benchmarks/spawn_gate.py``), and the gate's own hold + release round trip.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import text  # noqa: E402

from jupyter_ext.costs.db import make_engine, write_lock  # noqa: E402
from jupyter_ext.costs.ledger import BudgetExceeded, Ledger  # noqa: E402
from jupyter_ext.db.migrate import drop_schema, ensure_schema  # noqa: E402

AMOUNT = 1_210_000
USERS = 20


def pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def run_pool(n_ops, threads, fn):
    latencies = [0.0] * n_ops
    barrier = threading.Barrier(min(threads, n_ops))

    def one(i):
        if i < threads:
            barrier.wait()
        t = time.perf_counter()
        ok = fn(i)
        latencies[i] = time.perf_counter() - t
        return ok

    t0 = time.perf_counter()
    with ThreadPoolExecutor(max_workers=threads) as pool:
        results = list(pool.map(one, range(n_ops)))
    wall = time.perf_counter() - t0
    return latencies, wall, results


def fresh_engine(url, threads):
    if url.startswith("sqlite"):
        return make_engine(url)
    engine = make_engine(url, pool_size=threads + 2, max_overflow=8)
    drop_schema(engine)  # a shared server database: start each round from empty books
    ensure_schema(engine)
    return engine


def bench_lens(url, n_ops, threads, budget_ops, charge):
    engine = fresh_engine(url, threads)
    ledger = Ledger(engine)
    for u in range(USERS):
        ledger.set_budget(f"user:u{u}", budget_ops * AMOUNT)
    ledger.set_budget("group:lab", budget_ops * AMOUNT)

    for w in range(20):  # warm-up (statement caches, connections), on an unbudgeted account
        ledger.charge(ledger.hold([f"user:warm{w}"], AMOUNT, "jobs", "warm"), AMOUNT)

    def op(i):
        try:
            h = ledger.hold([f"user:u{i % USERS}", "group:lab"], AMOUNT, "jobs", f"job-{i}")
        except BudgetExceeded:
            return False
        ledger.charge(h, charge)
        return True

    lat, wall, results = run_pool(n_ops, threads, op)
    s = ledger.summary("group:lab")
    ok = (s.budget_micro == s.available_micro + s.held_micro + s.spent_micro and not ledger.verify())
    engine.dispose()
    return lat, wall, sum(results), ok


def bench_counter(url, n_ops, threads, budget_ops, charge):
    engine = fresh_engine(url, threads)
    with engine.begin() as c:
        c.execute(text("DROP TABLE IF EXISTS bare_budgets"))
        c.execute(text("CREATE TABLE bare_budgets (account VARCHAR(160) PRIMARY KEY, "
                       "amount BIGINT NOT NULL, used BIGINT NOT NULL)"))
        for u in range(USERS):
            c.execute(text("INSERT INTO bare_budgets VALUES (:a, :m, 0)"),
                      {"a": f"user:u{u}", "m": budget_ops * AMOUNT})
        c.execute(text("INSERT INTO bare_budgets VALUES ('group:lab', :m, 0)"), {"m": budget_ops * AMOUNT})
    take = text("UPDATE bare_budgets SET used = used + :x WHERE account = :a AND used + :x <= amount")
    give = text("UPDATE bare_budgets SET used = used - :x WHERE account = :a")

    with engine.begin() as c:  # warm-up, as for the ledger
        for _ in range(20):
            c.execute(give, {"x": 0, "a": "group:lab"})

    def op(i):
        accounts = [f"user:u{i % USERS}", "group:lab"]
        with write_lock(engine), engine.begin() as c:
            for a in accounts:
                if c.execute(take, {"x": AMOUNT, "a": a}).rowcount != 1:
                    c.rollback()
                    return False
        with write_lock(engine), engine.begin() as c:
            for a in accounts:
                c.execute(give, {"x": AMOUNT - charge, "a": a})
        return True

    lat, wall, results = run_pool(n_ops, threads, op)
    engine.dispose()
    with engine.connect() as c:
        used = c.execute(text("SELECT used, amount FROM bare_budgets WHERE account='group:lab'")).one()
    engine.dispose()
    return lat, wall, sum(results), used[0] <= used[1]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ops", type=int, default=1000)
    ap.add_argument("--threads", default="8,32", help="comma-separated thread counts (default 8,32)")
    ap.add_argument("--db", help="database URL (default: a fresh SQLite file per run)")
    ap.add_argument("--postgres", action="store_true",
                    help="also run against a throwaway local PostgreSQL (needs initdb and psycopg)")
    ap.add_argument("--spawn-gate", type=int, default=0, metavar="N",
                    help="also time N spawns with the budget gate against N without (two full stacks)")
    args = ap.parse_args()
    logging.getLogger("lens.costs").setLevel(logging.ERROR)  # threshold notices are expected here
    tmp = tempfile.TemporaryDirectory()
    for threads in [int(t) for t in args.threads.split(",")]:
        one_round(args, threads, tmp.name)
    if args.postgres:
        from tests.costs.pg import postgres_cluster

        with postgres_cluster() as url:
            args.db = url
            for threads in [int(t) for t in args.threads.split(",")]:
                one_round(args, threads, tmp.name)
    tmp.cleanup()
    if args.spawn_gate:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from spawn_gate import run as spawn_gate_run

        print()
        spawn_gate_run(args.spawn_gate, holds=200)


def one_round(args, threads, tmpdir):
    rows = []
    for name, fn in (("lens ledger", bench_lens), ("bare counter", bench_counter)):
        # all fit: each job is charged 3/4 of its hold; half fit: charged whole, so exactly half fit
        for label, budget_ops, charge in (("all fit", args.ops * 2, AMOUNT * 3 // 4),
                                          ("half fit", args.ops // 2, AMOUNT)):
            url = args.db or f"sqlite:///{tmpdir}/{name.split()[0]}-{budget_ops}-{threads}.sqlite"
            lat, wall, accepted, ok = fn(url, args.ops, threads, budget_ops, charge)
            rows.append((name, label, lat, wall, accepted, ok, budget_ops))
    print(f"\nledger benchmark: {args.ops} hold+charge operations, {threads} threads, "
          f"{args.db.split(':')[0] if args.db else 'sqlite (WAL)'}; {USERS} users + 1 group budget per hold")
    print(f"{'engine':<13} {'round':<9} {'p50 ms':>8} {'p95 ms':>8} {'ops/s':>8} {'accepted':>9} {'books':>6}")
    base = {}
    for name, label, lat, wall, accepted, ok, budget_ops in rows:
        tput = len(lat) / wall
        p50, p95 = pct(lat, 50) * 1000, pct(lat, 95) * 1000
        if name == "bare counter":
            base[label] = (p50, p95, tput)
        expect = min(args.ops, budget_ops)
        print(f"{name:<13} {label:<9} {p50:8.2f} {p95:8.2f} {tput:8.0f} {accepted:>5}/{expect:<3} "
              f"{'ok' if ok and accepted == expect else 'BAD':>6}")
    print("ratios lens / bare counter:")
    for name, label, lat, wall, *_ in rows:
        if name == "lens ledger":
            b = base[label]
            print(f"  {label:<9} p50 x{pct(lat, 50) * 1000 / b[0]:.2f}  p95 x{pct(lat, 95) * 1000 / b[1]:.2f}"
                  f"  throughput x{len(lat) / wall / b[2]:.2f}")


if __name__ == "__main__":
    main()
