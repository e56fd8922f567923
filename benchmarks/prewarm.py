"""Prewarm benchmark: a class of N seats is prewarmed, then all N log in at once.

On the full local stack with `make hub`'s defaults:
1. `lens workshop create pwNNNN --seats N`, then `lens workshop prewarm` (timed:
   the hub's start line paces the N starts);
2. the memory the N idle servers hold (PSS of each server's process tree,
   from /proc/PID/smaps_rollup, so shared pages are split, not counted N times);
3. N students log in at once (the login form), open /hub/spawn, which sends
   them to their running server's /lab, and call its /api/status: the time
   from login to a usable lab, p50/p95/max (target p95 <= 3 s).

    .venv/bin/python benchmarks/prewarm.py [--seats 40]
"""

from __future__ import annotations

import argparse
import csv
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil
import requests

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))

from benchmarks.spawn import fmt, pct, write_results  # noqa: E402
from tests.support.hub import make_stack  # noqa: E402
from tests.support.unix import remove_account  # noqa: E402


def workshop(stack, *args: str) -> subprocess.CompletedProcess:
    argv = [stack.python, "-m", "jupyter_ext.cli.main", "workshop", "--state", str(stack.state),
            "--hub-url", stack.url, *args]
    return subprocess.run(argv, capture_output=True, text=True, env=stack.env, timeout=3600, check=True)


def pss_mib(pid: int) -> float:
    """PSS of a process tree in MiB."""
    total = 0
    try:
        procs = [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]
    except psutil.Error:
        return 0.0
    for p in procs:
        try:
            for line in open(f"/proc/{p.pid}/smaps_rollup"):
                if line.startswith("Pss:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total / 1024


def student(url: str, name: str, password: str, start: threading.Event, out: dict) -> None:
    rec = out[name] = {"error": None}
    s = requests.Session()
    try:
        start.wait()
        t0 = time.monotonic()
        s.get(f"{url}/hub/login", timeout=120)
        r = s.post(f"{url}/hub/login", data={"username": name, "password": password,
                                              "_xsrf": s.cookies.get("_xsrf", "")}, allow_redirects=False, timeout=120)
        if r.status_code != 302:
            raise RuntimeError(f"login: HTTP {r.status_code}")
        rec["login"] = time.monotonic() - t0
        page = s.get(f"{url}/hub/spawn", timeout=120)  # running server: straight to its lab (OAuth)
        if page.status_code != 200 or not page.url.endswith(f"/user/{name}/lab"):
            raise RuntimeError(f"lab: HTTP {page.status_code} at {page.url}")
        status = s.get(f"{url}/user/{name}/api/status", timeout=60)
        if status.status_code != 200:
            raise RuntimeError(f"status: HTTP {status.status_code}")
        rec["ready"] = time.monotonic() - t0
    except Exception as exc:
        rec["error"] = f"{type(exc).__name__}: {exc}"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seats", type=int, default=40)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)

    work = Path(tempfile.mkdtemp(prefix="lens-prewarm-"))
    work.chmod(0o711)
    name = f"pw{secrets.token_hex(2)}"
    seats = [f"{name}-{i:02d}" for i in range(1, args.seats + 1)]
    stack = make_stack(work / "state")
    results: dict = {"machine": {"cpus": os.cpu_count(), "loadavg_start": os.getloadavg()}, "seats": args.seats}
    try:
        stack.start(timeout=120)
        workshop(stack, "create", name, "--seats", str(args.seats), "--expires", "+1d", "--profiles", "lab")
        t0 = time.monotonic()
        out = workshop(stack, "prewarm", name, "--starts", "+1h")
        results["prewarm_s"] = time.monotonic() - t0
        print(out.stdout.strip().splitlines()[-1], f"in {results['prewarm_s']:.1f} s", flush=True)
        time.sleep(10)  # let the servers settle idle
        pids = [stack.api("GET", f"/users/{s}?include_stopped_servers").json()["servers"][""]["state"]["pid"]
                for s in seats]
        mem = [pss_mib(pid) for pid in pids]
        results["idle_pss_mib_total"], results["idle_pss_mib_per_server"] = sum(mem), sum(mem) / len(mem)
        results["machine"]["mem_total_mib"] = psutil.virtual_memory().total / 2**20
        print(f"{args.seats} idle servers hold {sum(mem):.0f} MiB PSS ({sum(mem) / len(mem):.0f} MiB each)")

        passwords = {r["username"]: r["password"]
                     for r in csv.DictReader(open(stack.state / "workshops" / name / "credentials.csv"))}
        start, recs = threading.Event(), {}
        threads = [threading.Thread(target=student, args=(stack.url, s, passwords[s], start, recs)) for s in seats]
        for t in threads:
            t.start()
        time.sleep(0.5)
        t0 = time.monotonic()
        start.set()
        for t in threads:
            t.join(300)
        results["logins_wall_s"] = time.monotonic() - t0
        ready = [r["ready"] for r in recs.values() if r.get("ready") is not None]
        failures = [f"{n}: {r['error']}" for n, r in recs.items() if r["error"]]
        results.update(failures=len(failures), errors=failures[:10], ready_p50=pct(ready, 50),
                       ready_p95=pct(ready, 95), ready_max=max(ready, default=None))
        print(f"{args.seats} logins at once: {len(failures)} failures, login to usable lab p50 "
              f"{fmt(results['ready_p50'])} s, p95 {fmt(results['ready_p95'])} s, max {fmt(results['ready_max'])} s "
              f"(target p95 <= 3 s)")
        for err in failures[:5]:
            print("   ", err[:160])
    finally:
        try:
            workshop(stack, "close", name)
        except Exception as exc:  # the stack stops them anyway
            print(f"close: {exc}")
        stack.stop()
        for seat in seats:
            remove_account(f"jupyter-{seat}")
        results["machine"]["loadavg_end"] = os.getloadavg()
        write_results(results, "prewarm", args.json)
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
