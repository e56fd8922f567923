"""Server start benchmark: what a lens user server costs to reach ready, against a
plain JupyterLab server of the same versions, side by side in one run.

- **lens**: the full local stack (`lens hub run`), profile `lab`, spawned over
  REST; timed from the POST to the first 200 of `/user/NAME/api/status`
  through the proxy (the user's token).
- **lens-solo**: the same with the profile's real-time collaboration off
  (`collaboration: false`), what jupyter-collaboration costs a start.
- **plain**: `jupyter lab` from a venv holding only `jupyterlab` and
  `jupyter_server` at lens's versions (made once under `.cache/bench/`), run as
  a unix account of its own like lens's servers (as root); timed from the
  process start to the first 200 of its `/api/status`.

CPU-seconds are those of the server's process tree (user + system, children
included) at that moment. Rounds alternate lens and plain, after one warm-up
each (a first start writes the user's settings). Then, with `--extensions`, the
lens venv's `jupyter lab` is started with each server extension turned off in
turn, to show what each costs.

    .venv/bin/python benchmarks/server_start.py [--rounds 8] [--extensions]

Results: a table on stdout and JSON in benchmarks/results/.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
import requests

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))

from benchmarks.spawn import fmt, write_results  # noqa: E402
from tests.support.hub import make_stack  # noqa: E402
from tests.support.unix import create_account, remove_account  # noqa: E402

ROOT = os.geteuid() == 0
PY_BASE = "/usr/bin/python3"


def tree_cpu(pid: int) -> float:
    """CPU-seconds of a process and its descendants (reaped children included)."""
    total = 0.0
    try:
        procs = [psutil.Process(pid)]
        procs += procs[0].children(recursive=True)
    except psutil.Error:
        return 0.0
    for p in procs:
        try:
            t = p.cpu_times()
            total += t.user + t.system + t.children_user + t.children_system
        except psutil.Error:
            pass
    return total


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def plain_venv() -> Path:
    """A venv with only JupyterLab and Jupyter Server at lens's versions."""
    versions = {d: importlib.metadata.version(d) for d in ("jupyterlab", "jupyter_server")}
    venv = REPO / ".cache" / "bench" / f"plainlab-{versions['jupyterlab']}-{versions['jupyter_server']}"
    if not (venv / ".stamp").exists():
        shutil.rmtree(venv, ignore_errors=True)
        subprocess.run([PY_BASE, "-m", "venv", str(venv)], check=True)
        pins = [f"{d}=={v}" for d, v in versions.items()]
        subprocess.run([str(venv / "bin" / "pip"), "install", "-q", *pins], check=True)
        subprocess.run(["chmod", "-R", "a+rX", str(venv)], check=True)
        (venv / ".stamp").write_text(" ".join(pins) + "\n")
    return venv


def wait_status(url: str, token: str, proc: subprocess.Popen | None = None, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            r = requests.get(url, headers={"Authorization": f"token {token}"}, timeout=5, allow_redirects=False)
            if r.status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.02)
    raise RuntimeError(f"{url} not up after {timeout}s")


def start_local_lab(python_bin: Path, account: str | None, extra: list[str] = ()) -> tuple[float, float]:
    """(CPU-seconds, wall seconds) of `jupyter lab` from this venv up to /api/status."""
    home = Path(os.path.expanduser(f"~{account}")) if account else Path(tempfile.mkdtemp())
    port, token = free_port(), secrets.token_hex(16)
    env = {"PATH": f"{python_bin}:/usr/bin:/bin", "HOME": str(home), "LANG": "C.UTF-8"}
    argv = [str(python_bin / "jupyter-lab"), "--no-browser", f"--port={port}", "--ip=127.0.0.1",
            f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={home}", *extra]
    kwargs = {"user": account, "group": account} if account else {}
    if not account and ROOT:
        argv.append("--allow-root")
    t0 = time.monotonic()
    proc = subprocess.Popen(argv, env=env, cwd=home, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            **kwargs)
    try:
        wait_status(f"http://127.0.0.1:{port}/api/status", token, proc)
        wall = time.monotonic() - t0
        return tree_cpu(proc.pid), wall
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def server_pid(stack, name: str) -> int:
    model = stack.api("GET", f"/users/{name}?include_stopped_servers").json()
    return int(model["servers"][""]["state"]["pid"])


def start_lens_lab(stack, name: str, token: str, profile: str = "lab") -> tuple[float, float]:
    t0 = time.monotonic()
    r = stack.api("POST", f"/users/{name}/server", json={"profile": profile}, timeout=180)
    if r.status_code not in (201, 202):
        raise RuntimeError(f"spawn: HTTP {r.status_code} {r.text[:200]}")
    wait_status(f"{stack.url}/user/{name}/api/status", token)
    wall = time.monotonic() - t0
    cpu = tree_cpu(server_pid(stack, name))
    stack.stop_server(name)
    return cpu, wall


def summary(rows: list[tuple[float, float]]) -> dict:
    cpu, wall = [r[0] for r in rows], [r[1] for r in rows]
    return {"cpu_median": statistics.median(cpu), "cpu_min": min(cpu), "cpu_max": max(cpu),
            "wall_median": statistics.median(wall), "wall_min": min(wall), "wall_max": max(wall),
            "runs": [{"cpu": c, "wall": w} for c, w in rows]}


def lens_extensions() -> list[str]:
    """Server extensions the lens venv turns on (jupyter_server_config.d)."""
    names = []
    for f in sorted((Path(sys.prefix) / "etc" / "jupyter" / "jupyter_server_config.d").glob("*.json")):
        names += [k for k, on in json.loads(f.read_text()).get("ServerApp", {})
                  .get("jpserver_extensions", {}).items() if on]
    return sorted(set(names) - {"jupyterlab"})


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=8, help="timed starts of each (default 8)")
    ap.add_argument("--extensions", action="store_true", help="also time lens's jupyter lab without each extension")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)

    tag = secrets.token_hex(2)
    work = Path(tempfile.mkdtemp(prefix="lens-start-bench-"))
    work.chmod(0o711)
    plain = plain_venv()
    lens_user, plain_user = f"ss{tag}", f"ssp{tag}"
    made = [f"jupyter-{lens_user}"]
    # lab-solo: the lab profile with real-time collaboration off (collaboration: false), to
    # show what jupyter-collaboration costs a start, in the same run.
    import yaml

    catalog = yaml.safe_load((REPO / "hub_config" / "profiles.yaml").read_text())
    lab = next(p for p in catalog["profiles"] if p["slug"] == "lab")
    catalog["profiles"].append({**lab, "slug": "lab-solo", "default": False, "collaboration": False})
    (work / "profiles.yaml").write_text(yaml.safe_dump(catalog))
    (work / "profiles.yaml").chmod(0o644)
    stack = make_stack(work / "state", {"LENS_PROFILES": str(work / "profiles.yaml")})
    results: dict = {"machine": {"cpus": os.cpu_count(), "root": ROOT, "loadavg_start": os.getloadavg()}}
    try:
        if ROOT:
            create_account(plain_user)
            made.append(plain_user)
        stack.start(timeout=120)
        token = stack.create_user(lens_user)
        account = plain_user if ROOT else None
        lens_runs, solo_runs, plain_runs = [], [], []
        start_lens_lab(stack, lens_user, token)  # warm-up: first start writes settings
        start_local_lab(plain / "bin", account)
        for i in range(args.rounds):
            order = [("lens", lens_runs), ("lens-solo", solo_runs), ("plain", plain_runs)][:: 1 if i % 2 == 0 else -1]
            for label, runs in order:
                runs.append(start_lens_lab(stack, lens_user, token) if label == "lens"
                            else start_lens_lab(stack, lens_user, token, "lab-solo") if label == "lens-solo"
                            else start_local_lab(plain / "bin", account))
            print(f"round {i + 1}: lens {lens_runs[-1][0]:.2f} cpu-s {lens_runs[-1][1]:.2f} s, "
                  f"lens-solo {solo_runs[-1][0]:.2f} cpu-s {solo_runs[-1][1]:.2f} s, "
                  f"plain {plain_runs[-1][0]:.2f} cpu-s {plain_runs[-1][1]:.2f} s", flush=True)
        results["lens"], results["lens-solo"] = summary(lens_runs), summary(solo_runs)
        results["plain"] = summary(plain_runs)
        results["ratio_cpu"] = results["lens"]["cpu_median"] / results["plain"]["cpu_median"]
        results["ratio_wall"] = results["lens"]["wall_median"] / results["plain"]["wall_median"]
        results["ratio_cpu_solo"] = results["lens-solo"]["cpu_median"] / results["plain"]["cpu_median"]
        print(f"\n{'':10} {'CPU-s median':>13} {'min':>6} {'max':>6} {'wall median':>12}")
        for label in ("lens", "lens-solo", "plain"):
            s = results[label]
            print(f"{label:10} {s['cpu_median']:13.2f} {s['cpu_min']:6.2f} {s['cpu_max']:6.2f} {s['wall_median']:12.2f}")
        print(f"lens / plain: CPU {results['ratio_cpu']:.2f}x, wall {results['ratio_wall']:.2f}x "
              "(POST to /api/status through the hub for lens; process start for plain)")
        print(f"lens-solo (collaboration: false) / plain: CPU {results['ratio_cpu_solo']:.2f}x")
        if args.extensions:
            lens_bin = Path(sys.prefix) / "bin"
            base = [start_local_lab(lens_bin, account) for _ in range(3)]
            results["extensions"] = {"all": summary(base)}
            print(f"\nlens venv `jupyter lab` with all extensions: {summary(base)['cpu_median']:.2f} cpu-s")
            for ext in lens_extensions():
                off = [f"--ServerApp.jpserver_extensions={{'{ext}': False}}"]
                runs = [start_local_lab(lens_bin, account, off) for _ in range(3)]
                results["extensions"][ext] = summary(runs)
                saved = summary(base)["cpu_median"] - summary(runs)["cpu_median"]
                print(f"  without {ext:28} {summary(runs)['cpu_median']:.2f} cpu-s (it costs {fmt(saved)})")
    finally:
        stack.stop()
        for name in made:
            remove_account(name)
        results["machine"]["loadavg_end"] = os.getloadavg()
        print(f"results: {write_results(results, 'server-start', args.json)}")
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
