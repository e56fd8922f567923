"""Burst benchmark: a class logs in and starts JupyterLab at once, on the hub a new
operator gets, lens against vanilla JupyterHub, one after the other in one run.

- **lens**: `make hub`'s defaults (the full stack, `lens hub run`, no lens.yaml):
  the start line paces the burst.
- **vanilla**: JupyterHub with `LocalProcessSpawner` (as root; Simple otherwise)
  and JupyterHub's own defaults (start_timeout 60, http_timeout 30,
  concurrent_spawn_limit 100), the same proxy and single-user venv.

Each of N users logs in (form POST), spawns `lab` over REST with the login
cookie and follows the progress stream (as the spawn page does), opens the
server (OAuth, lands on /lab) and stops it. A 429 is a failure here (a person
who sees "Too many users" has failed to start). Reported: failures, p50/p95
from login to lab ready, the total time, and the floor N x (CPU-seconds per
start) / cores, with the start cost measured on this machine by
benchmarks/server_start.py (`--start-cpu`, default 2.0).

    .venv/bin/python benchmarks/burst.py [--users 60] [--start-cpu 2.0]
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))

from benchmarks.spawn import ROOT, bench_concurrent, fmt, lens_accounts, pct, write_results  # noqa: E402
from tests.support.hub import make_stack  # noqa: E402
from tests.support.unix import create_account, remove_account  # noqa: E402
from tests.support.vanilla import JUPYTERHUB_DEFAULTS, make_vanilla  # noqa: E402


def ready_times(result: dict) -> list[float]:
    """Login to lab ready, per user who got there: login + spawn + open."""
    return [sum(r["steps"][s] for s in ("login", "spawn", "open")) for r in result["raw"]
            if all(s in r["steps"] for s in ("login", "spawn", "open"))]


def report(results: list[dict], floor: float) -> None:
    print(f"\n{'hub':44} {'fail':>5} {'429':>4} {'p50 ready':>10} {'p95 ready':>10} {'total':>7} {'floor':>6}")
    for r in results:
        ready = ready_times(r)
        r["ready_p50"], r["ready_p95"] = pct(ready, 50), pct(ready, 95)
        print(f"{r['hub'][:44]:44} {r['failures']:5d} {r['retries_429']:4d} {fmt(r['ready_p50']):>10} "
              f"{fmt(r['ready_p95']):>10} {r['wall_s']:7.1f} {floor:6.1f}")
        for err in r["errors"][:5]:
            print(f"    {err[:160]}")
    lens, vanilla = results[0], results[-1]
    if lens.get("ready_p95") and vanilla.get("ready_p95"):
        print(f"lens / vanilla p95 ready: {lens['ready_p95'] / vanilla['ready_p95']:.2f}x "
              "(vanilla's p95 is over the users who got a server)")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--users", type=int, default=60)
    ap.add_argument("--start-cpu", type=float, default=2.0,
                    help="CPU-seconds of one lab start here (benchmarks/server_start.py), for the floor")
    ap.add_argument("--skip-vanilla", action="store_true")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)

    cores = len(os.sched_getaffinity(0))
    floor = args.users * args.start_cpu / cores
    work = Path(tempfile.mkdtemp(prefix="lens-burst-"))
    work.chmod(0o711)
    tag = secrets.token_hex(2)
    made: list[str] = []
    hubs = []
    results: dict = {"machine": {"cpus": cores, "root": ROOT, "loadavg_start": os.getloadavg()},
                     "users": args.users, "floor_s": floor, "start_cpu_s": args.start_cpu}
    runs = []
    try:
        lens = make_stack(work / "lens")  # no LENS_CONFIG: make hub's defaults
        hubs.append(lens)
        lens.start(timeout=120)
        names = [f"b{tag}{i:02d}" for i in range(args.users)]
        made += [f"jupyter-{n}" for n in names]
        print(f"{args.users} users at once against lens (make hub defaults)...", flush=True)
        runs.append(bench_concurrent("lens (make hub defaults)", lens, lens_accounts(lens, names),
                                     {"profile": "lab"}, retry_429=False))
        lens.stop()
        hubs.clear()
        if not args.skip_vanilla:
            spawner = "localprocess" if ROOT else "simple"
            vanilla = make_vanilla(work / "vanilla", spawner, sizing=JUPYTERHUB_DEFAULTS)
            hubs.append(vanilla)
            vnames = [f"v{tag}{i:02d}" for i in range(args.users)]
            if ROOT:
                for n in vnames:
                    create_account(n)
                    made.append(n)
            vanilla.start(timeout=120)
            print(f"{args.users} users at once against vanilla JupyterHub ({spawner}, its defaults)...", flush=True)
            runs.append(bench_concurrent(f"vanilla JupyterHub ({spawner}, defaults)", vanilla,
                                         [(n, vanilla.password) for n in vnames], {}, retry_429=False))
            vanilla.stop()
            hubs.clear()
        report(runs, floor)
        results["runs"] = runs
    finally:
        for hub in hubs:
            hub.stop()
        for name in made:
            remove_account(name)
        results["machine"]["loadavg_end"] = os.getloadavg()
        write_results(results, "burst", args.json)
        print(f"hub logs under {work}")
        if not any(r.get("failures") for r in runs):
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
