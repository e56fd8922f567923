"""Spawn latency with the budget gate against without it, side by side in one run.

Part of the ledger benchmark (``benchmarks/ledger.py --spawn-gate N`` runs it);
also runnable alone:

    .venv/bin/python benchmarks/spawn_gate.py [--spawns 20] [--holds 200]

Three full lens stacks (`lens hub run`: proxy, hub, lens service, culler, Dask
Gateway) run at once, identical except that two have ``spawner.budget_gate:
false`` in their lens.yaml; the second gate-off stack is an A/A control, whose
ratio to the first is the noise floor of the comparison. The gated user has a
monthly budget and a group budget, so every spawn's hold checks two budgets in
the ledger. Spawns go round-robin across the stacks (the order rotates every
round), POST -> ready, after one warm-up each.

JupyterHub's readiness poll (full-jitter backoff, up to 5 s a step) adds a
random 0-5 s to every spawn, far more than the gate costs. So it also reports,
from the stacks' logs, the profile chosen -> server listening (the spawn without
the poll) and the profile chosen -> process launched (where the gate's hold
happens), and times the gate itself: the hold + release round trip the spawner
makes, with the spawner's own token, against the same service.
"""

from __future__ import annotations

import argparse
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

from spawn import bench_latency, pct, write_results  # noqa: E402

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


_STAMP = r"\[I (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}) "


def _at(match) -> datetime:
    return datetime.strptime(match.group(1), "%Y-%m-%d %H:%M:%S.%f")


def spawn_spans(log_text: str, user: str) -> dict[str, list[float]]:
    """Per spawn of ``user``, from the stack's log (hub and server lines):

    - ``pre_start``: the profile chosen -> the process launched. Everything the
      gate adds to a spawn happens here (the hold is placed before the process
      starts), and none of the readiness-poll noise does.
    - ``to_listening``: the profile chosen -> the server listening. The whole
      spawn, without JupyterHub's randomised readiness poll (full-jitter backoff
      up to 5 s per step), which is the same code on both stacks.
    """
    chosen = re.compile(_STAMP + rf"JupyterHub common:\d+\] Profile \S+ selected for {re.escape(user)}$")
    launched = re.compile(_STAMP + r"JupyterHub spawner:\d+\] Spawning ")
    listening = re.compile(_STAMP + rf"ServerApp\] http://127\.0\.0\.1:\d+/user/{re.escape(user)}/")
    spans: dict[str, list[float]] = {"pre_start": [], "to_listening": []}
    t0 = t_launch = None
    for line in log_text.splitlines():
        if m := chosen.match(line):
            t0, t_launch = _at(m), None
        elif t0 is not None and t_launch is None and (m := launched.match(line)):
            t_launch = _at(m)
            spans["pre_start"].append((t_launch - t0).total_seconds())
        elif t0 is not None and t_launch is not None and (m := listening.match(line)):
            spans["to_listening"].append((_at(m) - t0).total_seconds())
            t0 = t_launch = None
    return spans


def stats(xs: list[float]) -> dict:
    return {"n": len(xs), "p50": pct(xs, 50), "p95": pct(xs, 95), "mean": statistics.mean(xs) if xs else None}


def run(spawns: int, holds: int) -> dict:
    """Three stacks: the gate on, off, and off again (an A/A control: how far two
    identical stacks differ in the same run is the noise floor of the ratio)."""
    work = Path(tempfile.mkdtemp(prefix="lens-gate-bench-"))
    work.chmod(0o711)
    (work / "off.yaml").write_text("spawner:\n  budget_gate: false\n")
    tag = secrets.token_hex(2)
    labels = {"gate on": f"gon{tag}", "gate off": f"goff{tag}", "gate off (control)": f"gctl{tag}"}
    extra = {"gate on": None, "gate off": {"LENS_CONFIG": str(work / "off.yaml")},
             "gate off (control)": {"LENS_CONFIG": str(work / "off.yaml")}}
    stacks: dict = {}
    try:
        for label, env in extra.items():
            # Ports are picked free, not reserved: pick each stack's right before it starts,
            # so the running stacks' own random ports cannot take them in between.
            stack = stacks[label] = make_stack(work / label.split()[-1].strip("()") / "state", env)
            stack.state.mkdir(parents=True, exist_ok=True)
            stack.start(timeout=120)
            stack.create_user(labels[label], groups=["bench-lab"])
        on = stacks["gate on"]
        env = {**on.env, "LENS_DB_URL": f"sqlite:///{on.state / 'lens.sqlite'}"}
        for account in (f"user:{labels['gate on']}", "group:bench-lab"):
            subprocess.run([sys.executable, "-m", "jupyter_ext.cli.main", "budgets", "set", account, "1000"],
                           check=True, env=env, capture_output=True)
        plan = [(label, stack, labels[label], {"profile": "lab"}) for label, stack in stacks.items()]
        print(f"Spawn latency, {spawns} timed spawns each (+1 warm-up): " + ", ".join(stacks), flush=True)
        lat = bench_latency(plan, spawns)
        trips = gate_round_trips(on, labels["gate on"], holds)
        spans = {label: spawn_spans((stack.state / "stack.log").read_text(), labels[label])
                 for label, stack in stacks.items()}
    finally:
        for stack in stacks.values():
            stack.stop()
        for name in labels.values():
            remove_account(f"jupyter-{name}")
    return summarize(lat, trips, spans)


def summarize(lat: dict, trips: list[float], spans: dict) -> dict:
    base = "gate off"
    ready = {k: stats(v["spawn_s"]) for k, v in lat.items()}
    listening = {k: stats(v["to_listening"]) for k, v in spans.items()}
    pre = {k: stats(v["pre_start"]) for k, v in spans.items()}
    gate = stats(trips)
    summary = {"post_to_ready_s": ready, "chosen_to_listening_s": listening, "pre_start_s": pre,
               "gate_round_trip_s": gate, "failed": {k: v["failed"] for k, v in lat.items()},
               "raw": lat, "spans": spans, "loadavg": os.getloadavg(), "ratios": {}}
    print(f"\n{'stack':20} {'n':>3} {'POST->ready p50':>16} {'mean':>6} {'chosen->listening p50':>22} "
          f"{'mean':>6} {'pre-start p50 ms':>17} {'failed':>6}")
    for k in lat:
        print(f"{k:20} {ready[k]['n']:>3} {ready[k]['p50']:>16.2f} {ready[k]['mean']:>6.2f} "
              f"{listening[k]['p50']:>22.2f} {listening[k]['mean']:>6.2f} {pre[k]['p50'] * 1000:>17.1f} "
              f"{len(lat[k]['failed']):>6}")
    for k in ("gate on", "gate off (control)"):
        r = {
            "post_to_ready_median": ready[k]["p50"] / ready[base]["p50"],
            "post_to_ready_mean": ready[k]["mean"] / ready[base]["mean"],
            "paired_median": statistics.median(
                a / b for a, b in zip(lat[k]["spawn_s"], lat[base]["spawn_s"], strict=False)),
            "chosen_to_listening_median": listening[k]["p50"] / listening[base]["p50"],
        }
        summary["ratios"][k] = r
        print(f"{k} / {base}: POST->ready x{r['post_to_ready_median']:.3f} (medians), "
              f"x{r['post_to_ready_mean']:.3f} (means), x{r['paired_median']:.3f} (paired); "
              f"chosen->listening x{r['chosen_to_listening_median']:.3f}")
    added = pre["gate on"]["p50"] - pre[base]["p50"]
    summary["gate_added_s_p50"] = added
    print(f"the gate itself: hold + release p50 {gate['p50'] * 1000:.1f} ms, p95 {gate['p95'] * 1000:.1f} ms "
          f"({gate['n']} round trips); it adds {added * 1000:.1f} ms (p50) before the process starts = "
          f"x{1 + added / ready[base]['p50']:.4f} of a median spawn (target: at most x1.05)")
    return summary


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--spawns", type=int, default=20)
    ap.add_argument("--holds", type=int, default=200)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    write_results(run(args.spawns, args.holds), "spawn-gate", args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
