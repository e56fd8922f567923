"""Spawn benchmark: the lens stack against vanilla JupyterHub, side by side, one run.

1. Latency: POST /hub/api/users/NAME/server -> ready, N sequential spawns each
   (after one warm-up), interleaved round-robin so machine load hits all alike:
   - lens: the full stack (`lens hub run`), LocalProfileSpawner, profile `lab`;
   - vanilla JupyterHub with SimpleLocalProcessSpawner;
   - vanilla JupyterHub with LocalProcessSpawner (as root: a real unix account).
   Medians and the ratio lens / peer (target <= 1.05).
2. Load: U simulated users at once doing login -> spawn -> open (OAuth to the
   user server) -> /api/status -> stop, against the full lens stack and against
   a vanilla JupyterHub (LocalProcessSpawner as root, else Simple), one after
   the other. p50/p95 per step, failures, 429 retries, hub CPU seconds.

The vanilla hub authenticates with JupyterHub's stock SharedPasswordAuthenticator
(the non-deprecated form of DummyAuthenticator-with-a-password): the same
login form and cookie flow, but a constant-time string compare instead of
lens's scrypt hash check. That makes the comparison conservative for lens.

    /work/main/.venv/bin/python benchmarks/spawn.py [--spawns 10] [--users 50]

Needs configurable-http-proxy under .cache/npm (make proxy). Results: a table
on stdout and JSON in benchmarks/results/.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil
import requests

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
# the hubs and services started below import lens from this checkout too
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))

from tests.support.hub import make_stack  # noqa: E402
from tests.support.unix import create_account, remove_account  # noqa: E402
from tests.support.vanilla import JUPYTERHUB_DEFAULTS, SPAWN_SIZING, make_vanilla  # noqa: E402

ROOT = os.geteuid() == 0
USER_DEADLINE = 600.0  # seconds one simulated user may take in all


# -- statistics ------------------------------------------------------------------
def pct(values: list[float], q: float) -> float | None:
    """Percentile with linear interpolation (q in 0..100)."""
    if not values:
        return None
    xs = sorted(values)
    k = (len(xs) - 1) * q / 100
    lo, hi = int(k), min(int(k) + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


def fmt(x: float | None, spec: str = ".2f") -> str:
    return "-" if x is None else format(x, spec)


# -- hub-side CPU ----------------------------------------------------------------
def cpu_seconds(pid: int) -> float:
    t = psutil.Process(pid).cpu_times()
    return t.user + t.system


def sidecars(hub_pid: int) -> list[psutil.Process]:
    """Proxy and managed services: the hub's children that are not user servers."""
    out = []
    for p in psutil.Process(hub_pid).children(recursive=True):
        try:
            if not any(s in part for part in p.cmdline() for s in ("jupyterhub-singleuser", "lens-singleuser")):
                out.append(p)
        except psutil.Error:
            pass
    return out


def sidecar_cpu(procs: list[psutil.Process]) -> float:
    total = 0.0
    for p in procs:
        try:
            t = p.cpu_times()
            total += t.user + t.system
        except psutil.Error:
            pass
    return total


# -- part 1: sequential spawn latency --------------------------------------------
def spawn_latency(hub, name: str, body: dict, timeout: float = 180) -> float:
    t0 = time.monotonic()
    r = hub.api("POST", f"/users/{name}/server", json=body, timeout=timeout)
    if r.status_code == 201:
        return time.monotonic() - t0
    if r.status_code != 202:
        raise RuntimeError(f"spawn of {name}: HTTP {r.status_code} {r.text[:200]}")
    while time.monotonic() - t0 < timeout:
        server = hub.api("GET", f"/users/{name}").json().get("servers", {}).get("")
        if server and server.get("ready"):
            return time.monotonic() - t0
        if not server:
            raise RuntimeError(f"spawn of {name} failed:\n{hub.tail(20)}")
        time.sleep(0.05)
    raise RuntimeError(f"spawn of {name} not ready after {timeout}s")


def stop_latency(hub, name: str, timeout: float = 60) -> float:
    t0 = time.monotonic()
    hub.stop_server(name, timeout)
    return time.monotonic() - t0


def bench_latency(hubs: list[tuple[str, object, str, dict]], n: int) -> dict:
    """hubs: (label, hub, user name, spawn body). Round-robin, rotating the order."""
    spawn = {label: [] for label, *_ in hubs}
    stop = {label: [] for label, *_ in hubs}
    failed = {label: [] for label, *_ in hubs}
    for _label, hub, name, body in hubs:  # warm-up: accounts, caches, first imports
        spawn_latency(hub, name, body)
        stop_latency(hub, name)
    for i in range(n):
        order = hubs[i % len(hubs):] + hubs[: i % len(hubs)]
        for label, hub, name, body in order:
            try:
                spawn[label].append(spawn_latency(hub, name, body))
                stop[label].append(stop_latency(hub, name))
            except RuntimeError as exc:  # counted and shown, not dropped silently
                failed[label].append(f"round {i + 1}: {str(exc).splitlines()[0]}")
                print(f"  FAILED {label}: {failed[label][-1]}", flush=True)
                if hub.api("GET", f"/users/{name}").json().get("servers"):
                    hub.stop_server(name, 120)
        print(f"  round {i + 1}/{n}: " + "  ".join(f"{lb}={spawn[lb][-1]:.2f}s" for lb, *_ in hubs if spawn[lb]),
              flush=True)
    return {label: {"spawn_s": spawn[label], "stop_s": stop[label], "failed": failed[label]} for label in spawn}


# -- part 2: concurrent simulated users -------------------------------------------
STEPS = ("login", "spawn", "open", "status", "stop")


def simulate_user(url: str, name: str, password: str, body: dict, start: threading.Event, out: dict,
                  retry_429: bool = True) -> None:
    """One person: login, spawn (following the progress stream), open the server, its
    status, stop. With ``retry_429`` False a 429 is that person's failure."""
    rec = {"name": name, "steps": {}, "retries_429": 0, "error": None}
    out[name] = rec
    s = requests.Session()
    t_begin = None

    def step(label, t0):
        rec["steps"][label] = time.monotonic() - t0

    try:
        start.wait()
        t_begin = t0 = time.monotonic()
        s.get(f"{url}/hub/login", timeout=120)
        r = s.post(f"{url}/hub/login", data={"username": name, "password": password,
                                              "_xsrf": s.cookies.get("_xsrf", "")},
                   allow_redirects=False, timeout=120)
        if r.status_code != 302:
            raise RuntimeError(f"login: HTTP {r.status_code}")
        step("login", t0)
        xsrf = {"X-XSRFToken": s.cookies.get("_xsrf", "")}

        t0 = time.monotonic()
        while True:
            r = s.post(f"{url}/hub/api/users/{name}/server", json=body, headers=xsrf, timeout=180)
            if r.status_code == 429:  # concurrent_spawn_limit: wait as told, like the spawn page says
                rec["retries_429"] += 1
                if not retry_429:
                    raise RuntimeError("spawn: HTTP 429 Too many users trying to log in right now")
                if time.monotonic() - t_begin > USER_DEADLINE:
                    raise RuntimeError("spawn: still 429 at the deadline")
                time.sleep(float(r.headers.get("Retry-After", "5")))
                continue
            if r.status_code not in (201, 202):
                raise RuntimeError(f"spawn: HTTP {r.status_code} {r.text[:300]}")
            break
        if r.status_code == 202:  # follow the progress stream, as the spawn-pending page does
            with s.get(f"{url}/hub/api/users/{name}/server/progress", stream=True, timeout=300) as pr:
                ready = False
                for line in pr.iter_lines():
                    if line.startswith(b"data:"):
                        event = json.loads(line[5:])
                        if event.get("ready"):
                            ready = True
                            break
                        if event.get("failed"):
                            raise RuntimeError(f"spawn failed: {event.get('message')}")
                if not ready:
                    raise RuntimeError("spawn: progress stream ended without ready")
        step("spawn", t0)

        t0 = time.monotonic()
        r = s.get(f"{url}/user/{name}/", timeout=120)  # OAuth with the hub, lands on /lab
        if r.status_code != 200:
            raise RuntimeError(f"open: HTTP {r.status_code} at {r.url}")
        step("open", t0)

        t0 = time.monotonic()
        r = s.get(f"{url}/user/{name}/api/status", timeout=60)
        if r.status_code != 200 or "started" not in r.json():
            raise RuntimeError(f"status: HTTP {r.status_code}")
        step("status", t0)

        t0 = time.monotonic()
        r = s.delete(f"{url}/hub/api/users/{name}/server", headers=xsrf, timeout=120)
        if r.status_code == 202:
            while time.monotonic() - t0 < 120:
                model = s.get(f"{url}/hub/api/users/{name}", timeout=60).json()
                if not model.get("servers"):
                    break
                time.sleep(0.5)
            else:
                raise RuntimeError("stop: server still there after 120 s")
        elif r.status_code != 204:
            raise RuntimeError(f"stop: HTTP {r.status_code} {r.text[:200]}")
        step("stop", t0)
    except Exception as exc:  # recorded as a failure of this user, with the step it died in
        failed_step = next((st for st in STEPS if st not in rec["steps"]), "?")
        rec["error"] = f"{failed_step}: {type(exc).__name__}: {exc}"
    finally:
        if t_begin is not None:
            rec["total_s"] = time.monotonic() - t_begin


def bench_concurrent(label: str, hub, users: list[tuple[str, str]], body: dict, retry_429: bool = True) -> dict:
    hub_pid = hub.hub_pid()
    cars = sidecars(hub_pid)
    start = threading.Event()
    out: dict = {}
    threads = [threading.Thread(target=simulate_user, args=(hub.url, n, pw, body, start, out, retry_429),
                                daemon=True) for n, pw in users]
    for t in threads:
        t.start()
    time.sleep(0.5)
    cpu0, car0, t0 = cpu_seconds(hub_pid), sidecar_cpu(cars), time.monotonic()
    start.set()
    for t in threads:
        t.join(USER_DEADLINE + 60)
    wall = time.monotonic() - t0
    cpu1, car1 = cpu_seconds(hub_pid), sidecar_cpu(cars)
    recs = list(out.values())
    failures = [r for r in recs if r["error"]] + [{"name": "?", "error": "thread hung"}] * (len(users) - len(recs))
    steps = {st: [r["steps"][st] for r in recs if st in r["steps"]] for st in STEPS}
    result = {
        "hub": label,
        "users": len(users),
        "wall_s": wall,
        "hub_cpu_s": cpu1 - cpu0,
        "sidecar_cpu_s": car1 - car0,
        "sidecars": sorted({" ".join(p.cmdline()[:3])[-60:] for p in cars if p.is_running()}),
        "failures": len(failures),
        "errors": [f"{r['name']}: {r['error']}" for r in failures],
        "retries_429": sum(r["retries_429"] for r in recs),
        "steps": {st: {"n": len(v), "p50": pct(v, 50), "p95": pct(v, 95), "max": max(v, default=None)}
                  for st, v in steps.items()},
        "raw": recs,
    }
    if failures:
        result["hub_log_tail"] = hub.tail(80)
    return result


# -- setup -------------------------------------------------------------------------
def lens_accounts(stack, names: list[str]) -> list[tuple[str, str]]:
    from jupyter_ext.accounts import AccountStore
    from jupyter_ext.hub.state import ensure_state

    store = AccountStore.from_url(ensure_state(stack.state).lens_db_url)
    users = []
    for name in names:
        pw = secrets.token_urlsafe(12)
        store.create(name, pw)
        users.append((name, pw))
    return users


def print_latency(lat: dict, peers: list[str]) -> dict:
    lens = "lens LocalProfileSpawner"
    med = {label: statistics.median(v["spawn_s"]) for label, v in lat.items()}
    print("\nSpawn latency, POST -> ready (sequential, interleaved)")
    print(f"{'spawner':28} {'n':>3} {'median s':>9} {'mean':>6} {'min':>6} {'max':>6} {'stop med':>9} "
          f"{'lens/this':>9} {'paired':>7}")
    ratios, paired = {}, {}
    for label, v in lat.items():
        ratio = med[lens] / med[label]
        # the same round's spawns ran back to back: the median of their ratios cancels slow drifts in load
        pair = statistics.median(a / b for a, b in zip(lat[lens]["spawn_s"], v["spawn_s"], strict=False))
        if label != lens:
            ratios[label], paired[label] = ratio, pair
        print(f"{label:28} {len(v['spawn_s']):>3} {med[label]:>9.2f} {statistics.mean(v['spawn_s']):>6.2f} "
              f"{min(v['spawn_s']):>6.2f} {max(v['spawn_s']):>6.2f} {statistics.median(v['stop_s']):>9.2f} "
              f"{ratio:>8.3f}x {pair:>6.3f}x  failed {len(v['failed'])}")
    for label in peers:
        verdict = "meets" if ratios[label] <= 1.05 else "MISSES"
        print(f"  lens / {label}: {ratios[label]:.3f}x ({verdict} the 1.05x target); "
              f"median of paired ratios {paired[label]:.3f}x")
    return {"median_s": med, "ratio_lens_over": ratios, "paired_ratio_lens_over": paired}


def print_concurrent(results: list[dict]) -> None:
    print("\nConcurrent users: login -> spawn -> open (OAuth) -> /api/status -> stop")
    print(f"{'hub':34} {'step':7} {'n':>3} {'p50 s':>7} {'p95 s':>7} {'max s':>7}")
    for res in results:
        for st, v in res["steps"].items():
            print(f"{res['hub']:34} {st:7} {v['n']:>3} {fmt(v['p50']):>7} {fmt(v['p95']):>7} {fmt(v['max']):>7}")
    print(f"\n{'hub':34} {'users':>5} {'fail':>4} {'429s':>5} {'wall s':>7} {'hub CPU s':>9} {'proxy+svc CPU s':>15}")
    for res in results:
        print(f"{res['hub']:34} {res['users']:>5} {res['failures']:>4} {res['retries_429']:>5} "
              f"{res['wall_s']:>7.1f} {res['hub_cpu_s']:>9.1f} {res['sidecar_cpu_s']:>15.1f}")
        for err in res["errors"][:10]:
            print(f"    failure: {err}")


def write_results(results: dict, name: str, path: Path | None = None) -> Path:
    """JSON next to the other runs (benchmarks/results/, gitignored) unless a path is given."""
    out = path or REPO / "benchmarks" / "results" / f"{name}-{time.strftime('%Y%m%dT%H%M%S')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2, default=str))
    print(f"\nJSON: {out}")
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--spawns", type=int, default=10, help="timed sequential spawns per spawner (default 10)")
    ap.add_argument("--users", type=int, default=50, help="simultaneous simulated users (default 50)")
    ap.add_argument("--skip-latency", action="store_true")
    ap.add_argument("--skip-concurrent", action="store_true")
    ap.add_argument("--json", type=Path, default=None, help="output (default benchmarks/results/spawn-<time>.json)")
    args = ap.parse_args(argv)

    work = Path(tempfile.mkdtemp(prefix="lens-spawn-bench-"))
    tag = secrets.token_hex(2)
    made_accounts: list[str] = []
    hubs = []
    results: dict = {
        "machine": {"cpus": os.cpu_count(), "root": ROOT, "loadavg_start": os.getloadavg()},
        "vanilla_auth": "jupyterhub SharedPasswordAuthenticator (stock; constant-time compare, no hashing)",
        "sizing": SPAWN_SIZING,
    }
    try:
        if not args.skip_latency:
            lens = make_stack(work / "lens-lat")
            simple = make_vanilla(work / "simple-lat", "simple")
            plan = [("lens LocalProfileSpawner", lens, f"lat-{tag}", {"profile": "lab"}),
                    ("SimpleLocalProcessSpawner", simple, f"lat-{tag}", {})]
            if ROOT:
                local = make_vanilla(work / "local-lat", "localprocess")
                name = f"lbl{tag}"
                create_account(name)
                made_accounts.append(name)
                plan.append(("LocalProcessSpawner", local, name, {}))
            made_accounts.append(f"jupyter-lat-{tag}")
            for _, hub, name, _ in plan:
                hubs.append(hub)
                hub.state.mkdir(parents=True, exist_ok=True)
                hub.start(timeout=120)
                hub.create_user(name)
            print(f"Latency: {args.spawns} timed spawns each (+1 warm-up), hubs: "
                  + ", ".join(label for label, *_ in plan), flush=True)
            lat = bench_latency(plan, args.spawns)
            results["latency"] = lat
            results["latency_summary"] = print_latency(lat, [label for label, *_ in plan[1:]])
            for hub in hubs:
                hub.stop()
            hubs.clear()

        if not args.skip_concurrent:
            conc = []
            lens = make_stack(work / "lens-load")
            hubs.append(lens)
            lens.state.mkdir(parents=True, exist_ok=True)
            lens.start(timeout=120)
            names = [f"c{tag}{i:02d}" for i in range(args.users)]
            made_accounts += [f"jupyter-{n}" for n in names]
            users = lens_accounts(lens, names)
            print(f"\nLoad: {args.users} users at once against the lens stack...", flush=True)
            conc.append(bench_concurrent("lens (full stack)", lens, users, {"profile": "lab"}))
            lens.stop()
            hubs.clear()

            spawner = "localprocess" if ROOT else "simple"
            # JupyterHub's own defaults, as lens runs with make hub's: what new operators get
            vanilla = make_vanilla(work / "vanilla-load", spawner, sizing=JUPYTERHUB_DEFAULTS)
            hubs.append(vanilla)
            names = [f"v{tag}{i:02d}" for i in range(args.users)]
            if ROOT:
                for n in names:
                    create_account(n)
                    made_accounts.append(n)
            vanilla.start(timeout=120)
            print(f"Load: {args.users} users at once against vanilla JupyterHub ({spawner})...", flush=True)
            label = f"vanilla ({'LocalProcessSpawner' if ROOT else 'SimpleLocalProcessSpawner'})"
            conc.append(bench_concurrent(label, vanilla, [(n, vanilla.password) for n in names], {}))
            vanilla.stop()
            hubs.clear()
            results["concurrent"] = conc
            print_concurrent(conc)
    finally:
        for hub in hubs:
            hub.stop()
        for name in made_accounts:
            remove_account(name)
        shutil.rmtree(f"/tmp/lat-{tag}", ignore_errors=True)  # SimpleLocalProcessSpawner's home
        results["machine"]["loadavg_end"] = os.getloadavg()
        write_results(results, "spawn", args.json)
        print(f"hub logs under {work}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
