"""`lens hub run`: the whole local platform in the foreground (what `make hub` runs).

It prepares the state directory and secrets (private: umask 077, modes fixed
at every start), refuses to start when one of the stack's ports is taken
(naming the holder), creates the admin account on the first run (printing its
password once), then runs JupyterHub in its own session; the hub starts the
proxy and the managed services. The launcher is a child subreaper, so every
process of the stack stays in its process tree: Ctrl-C, SIGTERM or SIGHUP stops
the hub, its services and their children, the proxy and every user server
within 10 seconds.
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

STOP_GRACE = 5.0  # seconds for the hub to stop its services and proxy; then the rest are signalled


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


def stack_ports(bind_url: str) -> dict[str, tuple[str, int]]:
    """What the stack will listen on: name -> (host, port)."""
    from urllib.parse import urlparse

    from jupyter_ext.hub.settings import SettingsError, load_settings

    try:
        settings = load_settings()
    except SettingsError as exc:
        raise CommandError(f"cannot start the hub: {exc}") from None
    bind = urlparse(bind_url)
    ports = {"proxy (public)": (bind.hostname or "127.0.0.1", bind.port or 80)}
    names = {"proxy_api": "proxy API", "hub": "hub", "lens_service": "lens service",
             "gateway": "dask-gateway", "gateway_proxy": "dask-gateway proxy"}
    with_gateway = config_file("dask_gateway_config.py").exists()
    for key, port in settings["ports"].items():
        if key.startswith("gateway") and not with_gateway:
            continue
        ports[names.get(key, key)] = ("127.0.0.1", int(port))
    return ports


def check_ports(ports: dict[str, tuple[str, int]]) -> None:
    """Refuse to start when a port is taken, naming the process that holds it: a hub
    whose managed service cannot bind would run on without that service."""
    from jupyter_ext.cli.procs import port_free, port_holders

    taken = []
    for name, (host, port) in ports.items():
        if port_free(host, port):
            continue
        holders = port_holders(port)
        who = "; ".join(f"pid {pid}: {cmd[:160]}" for pid, cmd in holders) or "a process this account cannot see"
        taken.append(f"port {port} ({name}) is in use by {who}")
    if taken:
        raise CommandError("cannot start the hub:\n  " + "\n  ".join(taken)
                           + "\n  stop that process (an earlier `lens hub run`?) or choose other ports (lens.yaml ports:)")


def run_hub(args) -> int:
    from jupyter_ext.cli import procs
    from jupyter_ext.hub.state import ensure_state, secure_tree

    state = ensure_state(args.state)  # also sets umask 077 for the hub and its services
    fixed = secure_tree(state.root)
    if fixed:
        print(f"lens: made {len(fixed)} file(s) and folder(s) in {state.root} private", flush=True)
    env = dict(os.environ)
    env.update(
        LENS_STATE_DIR=str(state.root),
        LENS_BIND_URL=args.bind_url,
        LENS_CHP=find_proxy(),
        PATH=os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")]),
    )
    os.environ["LENS_BIND_URL"] = args.bind_url
    check_ports(stack_ports(args.bind_url))
    password = ensure_admin(state.root)
    if password:
        # A password the operator chose (LENS_ADMIN_PASSWORD) is never echoed: this output
        # usually ends up in a log file. Only a generated one is shown, once.
        shown = "(from LENS_ADMIN_PASSWORD)" if os.environ.get("LENS_ADMIN_PASSWORD") else password
        print(
            "\n  lens: created the admin account (shown once; change it with `lens users passwd admin`)\n"
            f"    user:     admin\n    password: {shown}\n",
            flush=True,
        )
    # Everything the hub starts stays in this process's tree, even when JupyterHub
    # puts it in a session of its own (managed services, the proxy, user servers).
    procs.become_subreaper()
    stopping = {"asked": False}

    def on_signal(signum, _frame):
        stopping["asked"] = True

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, on_signal)
    # Its own session: Ctrl-C reaches only this launcher, which stops things in order.
    # `jupyterhub -f CONFIG` with its start-time fix (jupyter_ext.hub.run_jupyterhub)
    hub = subprocess.Popen([sys.executable, "-m", "jupyter_ext.hub.run_jupyterhub", "-f", args.config],
                           cwd=state.root, env=env, start_new_session=True)
    (state.root / "hub.pid").write_text(str(hub.pid))
    print(f"lens: hub starting on {args.bind_url} (Ctrl-C stops everything)", flush=True)

    while hub.poll() is None and not stopping["asked"]:
        procs.reap_orphans(keep=hub.pid)
        time.sleep(0.2)
    if not stopping["asked"]:
        # The hub exited by itself (or was restarted): leave user servers running.
        return hub.returncode or 0
    print("\nlens: stopping the hub, its services and the user servers...", flush=True)
    t0 = time.monotonic()
    servers = running_server_pids(state.root / "jupyterhub.sqlite")
    # The hub first, so that it records its state and stops its services and proxy...
    hub.send_signal(signal.SIGTERM)
    try:
        hub.wait(STOP_GRACE)
    except subprocess.TimeoutExpired:
        hub.kill()
        hub.wait()
    # ...then everything left under this launcher (services and their children: Dask
    # schedulers and workers, dask-gateway-proxy, jobs) and the user servers, also those
    # an earlier run left (they are in the hub database, not in this process tree).
    roots = [os.getpid(), *servers]
    try:
        roots.append(int(state.proxy_pid_file.read_text().strip()))
    except (OSError, ValueError):
        pass
    left = procs.stop_tree(roots, groups=servers, deadline_term=t0 + STOP_GRACE + 1.5, deadline_kill=t0 + 9.5)
    took = time.monotonic() - t0
    if left:
        print(f"lens: stopped in {took:.1f} s; still running: {left}", flush=True)
        return 1
    print(f"lens: stopped in {took:.1f} s", flush=True)
    return 0
