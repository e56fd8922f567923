"""Service-abuse benchmark: can three users' huge arrays stall the lens service for a fourth?

One real lens stack (`lens hub run`, local atom backend), one run:

1. idle: a fourth user ("probe") spawns a server (profile `lab`; timed), then calls the
   lens service's `GET /services/lens/api/me` in a loop for --seconds (one request at a
   time through the proxy, a 10 ms pause between them); the server is stopped.
2. abuse: three users each submit a 10,000-member array of `true` (local backend); once
   the service has refreshed them, the probe spawns again (timed) and runs the same loop
   while the arrays run and the service refreshes them every 5 s.
3. idle again: the arrays are cancelled and settle, and the loop runs once more.

Idle figures pool phases 1 and 3 (so slow drift of the machine hits both sides alike).
It prints p50/p95/max of the probe's latency per phase and the ratio abuse / idle
(target: p95 within 1.2x), the probe's spawn times, and how far the arrays got.

    /work/main/.venv/bin/python benchmarks/service_abuse.py [--seconds 30] [--size 10000]
    make bench BENCHES=service_abuse

Run it as root (jobs run as the users' unix accounts; the benchmark creates and removes
them). `--concurrency` is the local backend's `max_concurrency` (default: one less than
the machine's cores, at least 1, so the jobs leave the service a core, as an operator of
a shared hub would set it). JSON goes to benchmarks/results/.
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path

import psutil
import requests

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
# the hub and its services import lens from this checkout too
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))

from benchmarks.spawn import pct, write_results  # noqa: E402
from tests.support.hub import make_stack  # noqa: E402
from tests.support.unix import create_account, remove_account  # noqa: E402

ROOT = os.geteuid() == 0
TERMINAL = {"SUCCEEDED", "FAILED", "CANCELLED", "LOST", "REJECTED"}


def lens_api(hub, method: str, path: str, token: str, session=None, **kw) -> requests.Response:
    kw.setdefault("timeout", 60)
    return (session or requests).request(method, f"{hub.url}/services/lens/api/{path}",
                                         headers={"Authorization": f"token {token}"}, **kw)


def me_loop(hub, token: str, seconds: float, pause: float = 0.01) -> list[float]:
    """Latencies (ms) of GET api/me, one at a time, for ``seconds``."""
    out = []
    with requests.Session() as s:
        lens_api(hub, "GET", "me", token, session=s).raise_for_status()  # warm the connection
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            t0 = time.perf_counter()
            r = lens_api(hub, "GET", "me", token, session=s)
            out.append((time.perf_counter() - t0) * 1000)
            r.raise_for_status()
            time.sleep(pause)
    return out


def timed_spawn(hub, name: str, token: str) -> float:
    t0 = time.monotonic()
    r = hub.api("POST", f"/users/{name}/server", token=token, json={"profile": "lab"}, timeout=180)
    if r.status_code not in (201, 202):
        raise RuntimeError(f"spawn of {name}: HTTP {r.status_code} {r.text[:200]}")
    hub.wait_server(name, timeout=180)
    return time.monotonic() - t0


def jobs_of(hub, token: str) -> list[dict]:
    r = lens_api(hub, "GET", "jobs", token)
    r.raise_for_status()
    return r.json()["jobs"]


def wait_jobs(hub, tokens: list[str], done, what: str, limit: float = 300) -> list[dict]:
    deadline = time.monotonic() + limit
    while True:
        recs = [rec for t in tokens for rec in jobs_of(hub, t)]
        if recs and all(done(r) for r in recs):
            return recs
        if time.monotonic() > deadline:
            raise RuntimeError(f"not within {limit} s: {what}: "
                               f"{[(r['id'], r['state'], r['counts']) for r in recs]}")
        time.sleep(0.5)


def service_process(hub) -> psutil.Process | None:
    for p in psutil.Process(hub.hub_pid()).children(recursive=True):
        try:
            if "jupyter_ext.service" in p.cmdline():
                return p
        except psutil.Error:
            pass
    return None


def summary(ms: list[float]) -> dict:
    return {"n": len(ms), "p50": pct(ms, 50), "p95": pct(ms, 95), "max": max(ms) if ms else None}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=30.0, help="length of each api/me loop (default 30)")
    ap.add_argument("--size", type=int, default=10000, help="members per abusive array (default 10000)")
    ap.add_argument("--abusers", type=int, default=3)
    ap.add_argument("--concurrency", type=int, default=max(1, (os.cpu_count() or 2) - 1),
                    help="LocalBackend.max_concurrency (default: cores - 1, at least 1)")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    # clean up on Ctrl-C and SIGTERM, also when started in the background (SIGINT ignored),
    # and let the stack's launcher inherit a working SIGINT (HubStack.stop sends it)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if not ROOT:
        print("service_abuse: run as root (jobs run as the users' unix accounts)", file=sys.stderr)
        return 2

    work = Path(tempfile.mkdtemp(prefix="lens-abuse-bench-"))
    tag = secrets.token_hex(2)
    config = work / "lens_service_config.py"
    config.write_text(f"c.LocalBackend.max_concurrency = {args.concurrency}\n")
    hub = make_stack(work / "state", extra_env={"LENS_SERVICE_CONFIG": str(config)})
    probe = f"pr{tag}"
    abusers = [f"ab{tag}{i}" for i in range(args.abusers)]
    accounts = [f"jupyter-{n}" for n in (probe, *abusers)]
    results: dict = {"machine": {"cpus": os.cpu_count(), "loadavg_start": os.getloadavg()},
                     "args": {k: str(v) for k, v in vars(args).items()}}
    try:
        hub.start(timeout=180)
        svc = service_process(hub)
        results["service_pythonpath"] = svc.environ().get("PYTHONPATH") if svc else None
        print(f"lens service pid {svc.pid if svc else '?'}, PYTHONPATH={results['service_pythonpath']}",
              flush=True)
        probe_token = hub.create_user(probe)
        tokens = []
        for name in abusers:
            create_account(f"jupyter-{name}")  # jobs run as the user's unix account
            tokens.append(hub.create_user(name))

        lat: dict[str, list[float]] = {}
        spawn: dict[str, float] = {}
        print(f"idle: spawn, then api/me for {args.seconds:.0f} s", flush=True)
        spawn["idle"] = timed_spawn(hub, probe, probe_token)
        lat["idle (before)"] = me_loop(hub, probe_token, args.seconds)
        hub.stop_server(probe)

        print(f"abuse: {args.abusers} users submit {args.size}-member arrays", flush=True)
        spec = {"name": "flood", "command": ["true"], "walltime": 60, "array": args.size}
        t0 = time.monotonic()
        for token in tokens:
            r = lens_api(hub, "POST", "jobs", token, json=spec)
            if r.status_code != 201:
                raise RuntimeError(f"submit: HTTP {r.status_code} {r.text[:300]}")
        results["submit_s"] = time.monotonic() - t0
        deadline = time.monotonic() + 120  # until the first members start (not every array's:
        while not any(r["state"] == "RUNNING" or r["counts"].get("SUCCEEDED")  # first come,
                      for t in tokens for r in jobs_of(hub, t)):  # first served starts one)
            if time.monotonic() > deadline:
                raise RuntimeError("the arrays did not start within 120 s")
            time.sleep(0.5)
        spawn["abuse"] = timed_spawn(hub, probe, probe_token)
        lat["abuse"] = me_loop(hub, probe_token, args.seconds)
        recs = [rec for t in tokens for rec in jobs_of(hub, t)]
        results["arrays_during_abuse"] = [r["counts"] for r in recs]
        hub.stop_server(probe)

        print("idle again: cancel the arrays, then api/me", flush=True)
        for token, rec in zip(tokens, recs, strict=True):
            lens_api(hub, "DELETE", f"jobs/{rec['id']}", token).raise_for_status()
        wait_jobs(hub, tokens, lambda r: r["state"] in TERMINAL, "the arrays settle")
        lat["idle (after)"] = me_loop(hub, probe_token, args.seconds)
        lat["idle"] = lat["idle (before)"] + lat["idle (after)"]

        stats = {k: summary(v) for k, v in lat.items()}
        ratio = {q: stats["abuse"][q] / stats["idle"][q] for q in ("p50", "p95")}
        results.update(latency_ms=stats, ratio=ratio, spawn_s=spawn)
        done = sum(c.get("SUCCEEDED", 0) for c in results["arrays_during_abuse"])
        print(f"\nprobe's GET /services/lens/api/me, one at a time (ms); "
              f"{args.abusers} x {args.size}-member arrays, max_concurrency {args.concurrency}")
        print(f"  {'phase':<16}{'n':>6}{'p50':>9}{'p95':>9}{'max':>9}")
        for name in ("idle (before)", "abuse", "idle (after)", "idle"):
            s = stats[name]
            print(f"  {name:<16}{s['n']:>6}{s['p50']:>9.2f}{s['p95']:>9.2f}{s['max']:>9.2f}")
        print(f"  ratio abuse/idle: p50 x{ratio['p50']:.3f}, p95 x{ratio['p95']:.3f} "
              f"(target p95 <= 1.2: {'met' if ratio['p95'] <= 1.2 else 'MISSED'})")
        print(f"  probe's spawn (POST -> ready): idle {spawn['idle']:.2f} s, "
              f"under abuse {spawn['abuse']:.2f} s (x{spawn['abuse'] / spawn['idle']:.2f})")
        print(f"  submitting the arrays took {results['submit_s']:.2f} s; members finished by the "
              f"end of the abuse loop: {done} of {args.abusers * args.size}")
    finally:
        hub.stop()
        for name in accounts:
            remove_account(name)
        results["machine"]["loadavg_end"] = os.getloadavg()
        write_results(results, "service_abuse", args.json)
        print(f"stack log: {hub.log_path}")
    shutil.rmtree(work / "state" / "atom-local", ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
