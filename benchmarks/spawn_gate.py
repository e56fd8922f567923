"""Spawn latency with the budget gate against without it, side by side in one run.

Part of the ledger benchmark (``benchmarks/ledger.py --spawn-gate N`` runs it);
also runnable alone:

    .venv/bin/python benchmarks/spawn_gate.py [--spawns 20] [--holds 200]

Two full lens stacks (`lens hub run`: proxy, hub, lens service, culler, Dask
Gateway) run at once, identical except that one has ``spawner.budget_gate: false``
in its lens.yaml. The gated user has a monthly budget and a group budget, so
every spawn's hold checks two budgets in the ledger. Spawns alternate between
the stacks (the order flips every round), POST -> ready, after one warm-up each.

JupyterHub's readiness poll adds a random 0.35-3.2 s to every spawn, far more
than the gate costs, so it also times the gate itself: the hold + release round
trip the spawner makes, with the spawner's own token, against the same service.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))

from spawn import bench_latency, pct  # noqa: E402

from tests.support.hub import make_stack  # noqa: E402
from tests.support.unix import remove_account  # noqa: E402


def gate_round_trips(stack, user: str, n: int) -> list[float]:
    """Seconds per hold + release, as the spawner does them (token of the lens-gate service)."""
    token = (stack.state / "secrets" / "lens-gate.token").read_text().strip()
    base = f"http://127.0.0.1:{stack.env['LENS_LENS_SERVICE_PORT']}/services/lens/api/budget"
    headers = {"Authorization": f"token {token}"}
    times = []
    with requests.Session() as s:
        for i in range(n + 5):
            t0 = time.perf_counter()
            r = s.post(f"{base}/hold", json={"user": user, "category": "servers", "rate": 0.096,
                                             "ref": f"bench:{i}"}, headers=headers, timeout=30)
            r.raise_for_status()
            s.post(f"{base}/release", json={"hold_id": r.json()["hold_id"]}, headers=headers,
                   timeout=30).raise_for_status()
            if i >= 5:  # the first few warm the token cache and connections
                times.append(time.perf_counter() - t0)
    return times


_STAMP = r"\[I (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}) JupyterHub "


def pre_start_seconds(log_text: str, user: str) -> list[float]:
    """Per spawn of ``user``: from the profile chosen to the process launched, from the hub's log.

    Everything the gate adds to a spawn happens in this span (the hold is placed
    before the process starts), and none of the readiness-poll noise does.
    """
    chosen = re.compile(_STAMP + rf"common:\d+\] Profile \S+ selected for {re.escape(user)}$")
    launched = re.compile(_STAMP + r"spawner:\d+\] Spawning ")
    out, t0 = [], None
    for line in log_text.splitlines():
        if m := chosen.match(line):
            t0 = datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S.%f")
        elif t0 is not None and (m := launched.match(line)):
            out.append((datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S.%f") - t0).total_seconds())
            t0 = None
    return out


def run(spawns: int, holds: int) -> dict:
    work = Path(tempfile.mkdtemp(prefix="lens-gate-bench-"))
    work.chmod(0o711)
    (work / "off.yaml").write_text("spawner:\n  budget_gate: false\n")
    tag = secrets.token_hex(2)
    on = make_stack(work / "on" / "state")
    off = make_stack(work / "off" / "state", {"LENS_CONFIG": str(work / "off.yaml")})
    user_on, user_off = f"gon{tag}", f"goff{tag}"
    stacks = [on, off]
    try:
        for stack in stacks:
            stack.state.mkdir(parents=True, exist_ok=True)
            stack.start(timeout=120)
        on.create_user(user_on, groups=["bench-lab"])
        off.create_user(user_off, groups=["bench-lab"])
        env = {**on.env, "LENS_DB_URL": f"sqlite:///{on.state / 'lens.sqlite'}"}
        for account in (f"user:{user_on}", "group:bench-lab"):
            subprocess.run([sys.executable, "-m", "jupyter_ext.cli", "budgets", "set", account, "1000"],
                           check=True, env=env, capture_output=True)
        plan = [("gate on", on, user_on, {"profile": "lab"}), ("gate off", off, user_off, {"profile": "lab"})]
        print(f"Spawn latency, {spawns} timed spawns each (+1 warm-up), gate on vs off", flush=True)
        lat = bench_latency(plan, spawns)
        trips = gate_round_trips(on, user_on, holds)
        pre = {"gate on": pre_start_seconds((on.state / "stack.log").read_text(), user_on),
               "gate off": pre_start_seconds((off.state / "stack.log").read_text(), user_off)}
    finally:
        for stack in stacks:
            stack.stop()
        for name in (user_on, user_off):
            remove_account(f"jupyter-{name}")
    med = {k: statistics.median(v["spawn_s"]) for k, v in lat.items()}
    paired = statistics.median(a / b for a, b in zip(lat["gate on"]["spawn_s"], lat["gate off"]["spawn_s"],
                                                     strict=False))
    gate = {"p50_ms": pct(trips, 50) * 1000, "p95_ms": pct(trips, 95) * 1000, "n": len(trips)}
    summary = {
        "median_s": med,
        "ratio_on_over_off": med["gate on"] / med["gate off"],
        "paired_ratio": paired,
        "gate_round_trip": gate,
        "gate_share_of_median_spawn": gate["p50_ms"] / 1000 / med["gate off"],
        "pre_start_ms": {k: {"p50": pct(v, 50) * 1000, "p95": pct(v, 95) * 1000, "n": len(v)}
                         for k, v in pre.items() if v},
        "failed": {k: v["failed"] for k, v in lat.items()},
        "raw": lat,
        "loadavg": os.getloadavg(),
    }
    print(f"\n{'stack':9} {'n':>3} {'median s':>9} {'mean s':>7} {'min':>6} {'max':>6} {'failed':>6}")
    for k, v in lat.items():
        xs = v["spawn_s"]
        print(f"{k:9} {len(xs):>3} {med[k]:>9.2f} {statistics.mean(xs):>7.2f} {min(xs):>6.2f} "
              f"{max(xs):>6.2f} {len(v['failed']):>6}")
    verdict = "meets" if summary["ratio_on_over_off"] <= 1.05 else "MISSES"
    print(f"gate on / off: {summary['ratio_on_over_off']:.3f}x of medians ({verdict} the 1.05x target); "
          f"median of paired ratios {paired:.3f}x")
    print(f"the gate itself (hold + release, {gate['n']} round trips): p50 {gate['p50_ms']:.1f} ms, "
          f"p95 {gate['p95_ms']:.1f} ms = {100 * summary['gate_share_of_median_spawn']:.2f} % of a median spawn")
    for k, v in summary["pre_start_ms"].items():
        print(f"{k}: profile chosen -> process launched (hub log, {v['n']} spawns): "
              f"p50 {v['p50']:.1f} ms, p95 {v['p95']:.1f} ms")
    if len(summary["pre_start_ms"]) == 2:
        extra = summary["pre_start_ms"]["gate on"]["p50"] - summary["pre_start_ms"]["gate off"]["p50"]
        summary["gate_added_ms_p50"] = extra
        print(f"the gate adds {extra:.1f} ms (p50) before the process starts = "
              f"{100 * extra / 1000 / med['gate off']:.2f} % of a median spawn, i.e. "
              f"{1 + extra / 1000 / med['gate off']:.4f}x")
    return summary


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--spawns", type=int, default=20)
    ap.add_argument("--holds", type=int, default=200)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    summary = run(args.spawns, args.holds)
    out = args.json or REPO / "benchmarks" / "results" / f"spawn-gate-{time.strftime('%Y%m%dT%H%M%S')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(summary, indent=2, default=str))
    print(f"JSON: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
