"""40 workshop seats log in and start `lab` at once: lens vs vanilla JupyterHub.

Both hubs run the same spawner (spawners.LocalProfileSpawner, `lab` profile)
with the same timeouts and concurrent_spawn_limit, one after the other in
this run:
- lens: `lens hub run` (proxy, hub, lens service, culler, dask-gateway) plus
  `lens workshop create bench --seats N`; seats log in with the passwords
  from the generated sheet (scrypt-checked, workshop profile restriction on).
- vanilla: `jupyterhub` with DummyAuthenticator and nothing else.

Login-to-ready = POST /hub/login -> POST /hub/api/users/NAME/server ->
the user server answers /user/NAME/api/status. Run:
    PYTHONPATH=$PWD .venv/bin/python benchmarks/workshop.py [--seats 40]
As root this creates unix accounts jupyter-bench-NN and jupyter-vanb-NN;
they are removed at the end unless --keep-users.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.support.hub import ADMIN_PASSWORD, make_stack  # noqa: E402
from tests.support.moto import free_port  # noqa: E402

LENS_MAIN = "import sys; from jupyter_ext.cli.main import main; sys.exit(main(sys.argv[1:]))"
CHP = REPO / ".cache/npm/node_modules/.bin/configurable-http-proxy"
# A class starts at once: JupyterHub's default concurrent_spawn_limit (lens: 20)
# answers the 21st seat with 429; size it for the class, on both hubs.
SPAWN = {"start_timeout": 300, "http_timeout": 120, "concurrent_spawn_limit": 40,
         # lens only: the default 5 s gave 503s when 40 budget holds queued on a loaded 2-core box
         "budget_gate_timeout": 60}


def seat_run(url: str, name: str, password: str, out: dict, timeout: float) -> None:
    t0 = time.monotonic()
    try:
        s = requests.Session()
        s.get(f"{url}/hub/login", timeout=60)
        r = s.post(f"{url}/hub/login", data={"username": name, "password": password,
                                             "_xsrf": s.cookies.get("_xsrf", "")},
                   allow_redirects=False, timeout=120)
        if r.status_code != 302:
            raise RuntimeError(f"login {r.status_code}")
        t_login = time.monotonic() - t0
        xsrf = {"X-XSRFToken": s.cookies.get("_xsrf", "")}
        tok = s.post(f"{url}/hub/api/users/{name}/tokens", json={"expires_in": 3600}, headers=xsrf, timeout=120)
        tok.raise_for_status()
        auth = {"Authorization": f"token {tok.json()['token']}"}
        r = requests.post(f"{url}/hub/api/users/{name}/server", json={"profile": "lab"}, headers=auth, timeout=120)
        if r.status_code not in (201, 202):
            raise RuntimeError(f"spawn {r.status_code} {r.text[:200]}")
        deadline = t0 + timeout
        while time.monotonic() < deadline:
            try:
                st = requests.get(f"{url}/user/{name}/api/status", headers=auth, allow_redirects=False, timeout=30)
                if st.status_code == 200:
                    out[name] = {"ok": True, "login": t_login, "ready": time.monotonic() - t0}
                    return
            except requests.RequestException:
                pass
            model = requests.get(f"{url}/hub/api/users/{name}", headers=auth, timeout=60).json()
            if not model.get("servers"):
                raise RuntimeError("server failed to start")
            time.sleep(0.5)
        raise RuntimeError("timeout")
    except Exception as exc:  # recorded as a failure
        out[name] = {"ok": False, "error": str(exc), "ready": time.monotonic() - t0}


def storm(url: str, creds: dict[str, str], timeout: float) -> tuple[dict, float]:
    out: dict = {}
    threads = [threading.Thread(target=seat_run, args=(url, n, p, out, timeout)) for n, p in creds.items()]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return out, time.monotonic() - t0


def stop_all(url: str, token: str, names: list[str]) -> None:
    h = {"Authorization": f"token {token}"}
    for n in names:
        requests.delete(f"{url}/hub/api/users/{n}/server", headers=h, timeout=60)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if not any(requests.get(f"{url}/hub/api/users/{n}", headers=h, timeout=60).json().get("servers") for n in names):
            return
        time.sleep(1)


def run_lens(seats: int, root: Path, timeout: float) -> tuple[dict, float]:
    stack = make_stack(root / "lens")
    cfg = root / "lens.yaml"
    spawner = {k: SPAWN[k] for k in ("start_timeout", "http_timeout", "concurrent_spawn_limit")}
    cfg.write_text(json.dumps({"spawner": spawner}))  # JSON is YAML
    stack.env["LENS_CONFIG"] = str(cfg)
    # The lens hub config, plus the budget gate's timeout sized for a class start.
    wrapper = root / "lens_hub_config.py"
    wrapper.write_text(
        f"load_subconfig({str(REPO / 'hub_config' / 'jupyterhub_config.py')!r})\n"
        f"c.ProfileSpawnerMixin.budget_gate_timeout = {SPAWN['budget_gate_timeout']}\n"
    )
    stack.state.mkdir(parents=True, exist_ok=True)
    stack.log_path = stack.state / "stack.log"
    stack.proc = subprocess.Popen(
        [sys.executable, "-m", "jupyter_ext.cli.main", "hub", "run", "--state", str(stack.state),
         "--bind-url", stack.url, "--config", str(wrapper)],
        env=stack.env, stdout=open(stack.log_path, "ab"), stderr=subprocess.STDOUT, cwd=REPO,  # noqa: SIM115
    )
    stack.wait_ready(120)
    stack.admin_token = stack.login_token("admin", ADMIN_PASSWORD)
    try:
        subprocess.run([sys.executable, "-c", LENS_MAIN, "workshop", "--state", str(stack.state), "--hub-url",
                        stack.url, "create", "bench", "--seats", str(seats), "--expires", "+1d",
                        "--profiles", "lab"], check=True, env=stack.env, cwd=REPO, capture_output=True)
        sheet = stack.state / "workshops" / "bench" / "credentials.csv"
        creds = {r["username"]: r["password"] for r in csv.DictReader(sheet.open()) if r["role"] == "student"}
        result = storm(stack.url, creds, timeout)
        stop_all(stack.url, stack.admin_token, list(creds))
        return result
    finally:
        stack.stop(timeout=60)


VANILLA = """
c = get_config()
c.JupyterHub.bind_url = "http://127.0.0.1:{port}"
c.JupyterHub.hub_bind_url = "http://127.0.0.1:{hub_port}"
c.JupyterHub.db_url = "sqlite:///{state}/jupyterhub.sqlite"
c.JupyterHub.cookie_secret_file = "{state}/cookie_secret"
c.ConfigurableHTTPProxy.pid_file = "{state}/proxy.pid"
c.ConfigurableHTTPProxy.command = ["{chp}"]
c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:{api_port}"
c.JupyterHub.authenticator_class = "dummy"
c.DummyAuthenticator.password = "vanilla-bench-password"
c.Authenticator.allow_all = True
c.Authenticator.admin_users = {{"vadmin"}}
c.JupyterHub.spawner_class = "lens-local"
c.ProfileSpawnerMixin.lens_service_url = ""
c.Spawner.default_url = "/lab"
c.Spawner.start_timeout = {start_timeout}
c.Spawner.http_timeout = {http_timeout}
c.JupyterHub.concurrent_spawn_limit = {concurrent_spawn_limit}  # budget gate: none ({budget_gate_timeout})
c.Spawner.env_keep = ["PATH", "LANG", "LC_ALL"]
"""


def run_vanilla(seats: int, root: Path, timeout: float) -> tuple[dict, float]:
    state = root / "vanilla"
    state.mkdir()
    port = free_port()
    (state / "config.py").write_text(VANILLA.format(
        port=port, hub_port=free_port(), api_port=free_port(), state=state, chp=CHP, **SPAWN))
    env = dict(os.environ, LENS_STATE_DIR=str(state), PYTHONPATH=str(REPO),
               LENS_PROFILES=str(REPO / "hub_config" / "profiles.yaml"),
               PATH=os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]))
    log = open(state / "hub.log", "wb")  # noqa: SIM115
    hub = subprocess.Popen([str(Path(sys.executable).parent / "jupyterhub"), "-f", str(state / "config.py")],
                           cwd=state, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if requests.get(f"{url}/hub/api/", timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                time.sleep(0.5)
        creds = {f"vanb-{i:02d}": "vanilla-bench-password" for i in range(1, seats + 1)}
        result = storm(url, creds, timeout)
        s = requests.Session()
        s.get(f"{url}/hub/login", timeout=30)
        s.post(f"{url}/hub/login", data={"username": "vadmin", "password": "vanilla-bench-password",
                                         "_xsrf": s.cookies.get("_xsrf", "")}, timeout=60)
        tok = s.post(f"{url}/hub/api/users/vadmin/tokens", json={"expires_in": 600},
                     headers={"X-XSRFToken": s.cookies.get("_xsrf", "")}, timeout=60).json()["token"]
        stop_all(url, tok, list(creds))
        return result
    finally:
        hub.send_signal(signal.SIGTERM)
        try:
            hub.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(hub.pid, signal.SIGKILL)


def summary(label: str, result: dict, wall: float) -> list[str]:
    ok = sorted(v["ready"] for v in result.values() if v["ok"])
    fails = [f"{k}: {v['error']}" for k, v in sorted(result.items()) if not v["ok"]]
    p50 = statistics.median(ok) if ok else float("nan")
    p95 = ok[min(len(ok) - 1, int(round(0.95 * (len(ok) - 1))))] if ok else float("nan")
    return [label, f"{len(ok)}/{len(result)}", f"{p50:.1f}", f"{p95:.1f}", f"{max(ok) if ok else float('nan'):.1f}",
            f"{wall:.1f}", str(len(fails)), "; ".join(fails[:3])]


def remove_users(prefixes: tuple[str, ...], seats: int) -> None:
    if os.geteuid() != 0:
        return
    import pwd

    for prefix in prefixes:
        for i in range(1, seats + 1):
            name = f"jupyter-{prefix}-{i:02d}"
            try:
                pwd.getpwnam(name)
            except KeyError:
                continue
            subprocess.run(["userdel", "-r", name], capture_output=True)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seats", type=int, default=40)
    ap.add_argument("--timeout", type=float, default=300, help="per-seat login-to-ready limit (s)")
    ap.add_argument("--keep-users", action="store_true")
    ap.add_argument("--keep-logs", action="store_true", help="keep the hubs' state and logs (path printed)")
    ap.add_argument("--spawn-limit", type=int, default=SPAWN["concurrent_spawn_limit"])
    ap.add_argument("--budget-gate-timeout", type=float, default=SPAWN["budget_gate_timeout"])
    args = ap.parse_args()
    SPAWN["concurrent_spawn_limit"] = args.spawn_limit
    SPAWN["budget_gate_timeout"] = args.budget_gate_timeout
    if not CHP.exists() and not shutil.which("configurable-http-proxy"):
        sys.exit("configurable-http-proxy missing: run `make proxy`")
    root = Path(tempfile.mkdtemp(prefix="lens-bench-ws-"))
    os.chmod(root, 0o711)
    rows, loads = [], []
    try:
        for label, fn in (("lens workshop", run_lens), ("vanilla JupyterHub", run_vanilla)):
            before = os.getloadavg()[0]
            result, wall = fn(args.seats, root, args.timeout)
            loads.append((label, before, os.getloadavg()[0]))
            rows.append(summary(label, result, wall))
    finally:
        if not args.keep_users:
            remove_users(("bench", "vanb"), args.seats)
        if args.keep_logs:
            print(f"logs kept in {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    head = ["hub", "ready", "p50 s", "p95 s", "max s", "wall s", "failures", "first errors"]
    print(f"\n{args.seats} seats log in and start `lab` at once; {os.cpu_count()} CPUs (shared machine); "
          f"concurrent_spawn_limit {args.spawn_limit}, lens budget gate timeout {args.budget_gate_timeout:g} s\n")
    print("  ".join(f"{h:>18}" if i == 0 else f"{h:>9}" for i, h in enumerate(head[:-1])))
    for row in rows:
        print("  ".join(f"{c:>18}" if i == 0 else f"{c:>9}" for i, c in enumerate(row[:-1])), row[-1])
    if len(rows) == 2:
        try:
            print(f"\nratio lens/vanilla: p50 {float(rows[0][2]) / float(rows[1][2]):.2f}x, "
                  f"p95 {float(rows[0][3]) / float(rows[1][3]):.2f}x, wall {float(rows[0][5]) / float(rows[1][5]):.2f}x")
        except (ValueError, ZeroDivisionError):
            pass
    for label, before, after in loads:
        print(f"load average (1 min) {label}: {before:.1f} before, {after:.1f} after")
    return 0


if __name__ == "__main__":
    sys.exit(main())
