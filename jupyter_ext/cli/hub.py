"""`lens hub run`: the whole local platform in the foreground (what `make hub` runs).

It prepares the state directory and secrets, creates the admin account on the
first run (printing its password once), then runs JupyterHub in its own
session; the hub starts the proxy and the managed services. Ctrl-C stops the
hub, its services, the proxy and every user server within 10 seconds.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from jupyter_ext.cli.main import CommandError
from jupyter_ext.paths import config_file, state_dir

STOP_GRACE = 6.0  # seconds for the hub to stop its services and proxy


def register(subparsers) -> None:
    hub = subparsers.add_parser("hub", help="run the local hub")
    sub = hub.add_subparsers(dest="hub_command", metavar="ACTION")
    run = sub.add_parser("run", help="run proxy, hub and services in the foreground (Ctrl-C stops all)")
    run.add_argument("--state", default=str(state_dir()))
    run.add_argument("--bind-url", default=os.environ.get("LENS_BIND_URL", "http://127.0.0.1:8000"))
    run.add_argument("--config", default=str(config_file("jupyterhub_config.py")))
    run.set_defaults(func=run_hub)
    hub.set_defaults(func=lambda args: hub.print_help() or 1)


def find_proxy() -> str:
    found = os.environ.get("LENS_CHP") or shutil.which("configurable-http-proxy")
    if not found:
        raise CommandError("configurable-http-proxy not found: run `make proxy` (npm) first, or set LENS_CHP")
    return found


def ensure_admin(state_root: Path, name: str = "admin") -> str | None:
    """Create the admin account on the first run; return its password then, else None."""
    from jupyter_ext.accounts import AccountStore
    from jupyter_ext.hub.state import StateDir

    store = AccountStore.from_url(StateDir(state_root).lens_db_url)
    if store.get(name) is not None:
        return None
    return store.create(name, os.environ.get("LENS_ADMIN_PASSWORD") or None, admin=True)


def running_server_pids(hub_db: Path) -> list[int]:
    """PIDs of local user servers recorded in the hub database."""
    if not hub_db.exists():
        return []
    pids = []
    with sqlite3.connect(hub_db) as conn:
        for (raw,) in conn.execute("SELECT state FROM spawners WHERE server_id IS NOT NULL"):
            try:
                pid = json.loads(raw or "{}").get("pid")
            except (TypeError, ValueError):
                continue
            if isinstance(pid, int) and pid > 0:
                pids.append(pid)
    return pids


def stop_process_groups(pids: list[int], grace: float) -> None:
    """SIGTERM each process group, SIGKILL what is left after `grace` seconds."""
    for pid in pids:
        try:
            os.killpg(pid, signal.SIGTERM)
        except (ProcessLookupError, PermissionError):
            pass
    deadline = time.monotonic() + grace
    alive = list(pids)
    while alive and time.monotonic() < deadline:
        alive = [p for p in alive if _alive(p)]
        time.sleep(0.1)
    for pid in alive:
        try:
            os.killpg(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie still "exists"; check its state.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


def run_hub(args) -> int:
    from jupyter_ext.hub.state import ensure_state

    state = ensure_state(args.state)
    password = ensure_admin(state.root)
    if password:
        print(
            "\n  lens: created the admin account (shown once; change it with `lens users passwd admin`)\n"
            f"    user:     admin\n    password: {password}\n",
            flush=True,
        )
    env = dict(os.environ)
    env.update(
        LENS_STATE_DIR=str(state.root),
        LENS_BIND_URL=args.bind_url,
        LENS_CHP=find_proxy(),
        PATH=os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")]),
    )
    jupyterhub = str(Path(sys.executable).parent / "jupyterhub")
    if not Path(jupyterhub).exists():
        jupyterhub = shutil.which("jupyterhub") or "jupyterhub"
    # Its own session: Ctrl-C reaches only this launcher, which stops things in order.
    hub = subprocess.Popen([jupyterhub, "-f", args.config], cwd=state.root, env=env, start_new_session=True)
    (state.root / "hub.pid").write_text(str(hub.pid))
    print(f"lens: hub starting on {args.bind_url} (Ctrl-C stops everything)", flush=True)

    stopping = {"asked": False}

    def on_signal(signum, _frame):
        stopping["asked"] = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    while hub.poll() is None and not stopping["asked"]:
        time.sleep(0.2)
    if not stopping["asked"]:
        # The hub exited by itself (or was restarted): leave user servers running.
        return hub.returncode or 0
    print("\nlens: stopping the hub, its services and the user servers...", flush=True)
    t0 = time.monotonic()
    servers = running_server_pids(state.root / "jupyterhub.sqlite")
    hub.send_signal(signal.SIGTERM)
    try:
        hub.wait(STOP_GRACE)
    except subprocess.TimeoutExpired:
        os.killpg(hub.pid, signal.SIGKILL)
        hub.wait()
    # Stragglers in the hub's session (services, proxy) go too.
    try:
        os.killpg(hub.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    stop_process_groups(servers, grace=max(0.5, 9.0 - (time.monotonic() - t0)))
    proxy_pid_file = state.proxy_pid_file
    if proxy_pid_file.exists():
        try:
            os.kill(int(proxy_pid_file.read_text().strip()), signal.SIGTERM)
        except (ValueError, ProcessLookupError, PermissionError):
            pass
    print(f"lens: stopped in {time.monotonic() - t0:.1f} s", flush=True)
    return 0
