"""LocalProfileSpawner as root: per-user unix accounts, private homes, memory cgroups."""

from __future__ import annotations

import os
import pwd
import subprocess
import sys
from pathlib import Path

import pytest

from spawners.profiles import load_catalog
from tests.support.hub import REPO

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(os.geteuid() != 0, reason="per-user accounts need the hub to run as root"),
]
LAB = load_catalog(REPO / "hub_config" / "profiles.yaml").get("lab")


def server_pid(stack, name: str) -> int:
    # The hub records the pid in the spawner state (admin:server_state scope).
    model = stack.api("GET", f"/users/{name}?include_stopped_servers").json()
    state = model["servers"][""].get("state") or {}
    return int(state["pid"])


def test_each_user_has_a_private_unix_account(stack):
    for name in ("iso-a", "iso-b"):
        stack.create_user(name)
        stack.spawn(name, "lab")
    try:
        a, b = pwd.getpwnam("jupyter-iso-a"), pwd.getpwnam("jupyter-iso-b")
        assert a.pw_uid != b.pw_uid
        for entry in (a, b):
            st = os.stat(entry.pw_dir)
            assert st.st_uid == entry.pw_uid
            assert st.st_mode & 0o777 == 0o700
        # The server process runs as the user's account, not root.
        pid = server_pid(stack, "iso-a")
        assert os.stat(f"/proc/{pid}").st_uid == a.pw_uid
        # User A cannot read user B's home.
        secret = Path(b.pw_dir) / "secret.txt"
        secret.write_text("b only")
        os.chown(secret, b.pw_uid, b.pw_gid)
        r = subprocess.run(["runuser", "-u", "jupyter-iso-a", "--", "cat", str(secret)], capture_output=True)
        assert r.returncode != 0 and b"Permission denied" in r.stderr
        r = subprocess.run(["runuser", "-u", "jupyter-iso-b", "--", "cat", str(secret)], capture_output=True)
        assert r.returncode == 0 and r.stdout == b"b only"
        # $SCRATCH_BUCKET (local mode) is each user's own directory: zarr writes there as is
        scratch_a, scratch_b = stack.state / "scratch" / "iso-a", stack.state / "scratch" / "iso-b"
        for path, entry in ((scratch_a, a), (scratch_b, b)):
            st = os.stat(path)
            assert (st.st_uid, st.st_mode & 0o777) == (entry.pw_uid, 0o700)
        write = ("import os, numpy, xarray; p = os.environ['SCRATCH_BUCKET'] + '/x.zarr'; "
                 "xarray.Dataset({'t': ('x', numpy.arange(4.0))}).to_zarr(p, mode='w'); "
                 "print(float(xarray.open_zarr(p).t.sum()))")
        r = subprocess.run(["runuser", "-u", "jupyter-iso-a", "--", sys.executable, "-c", write],
                           capture_output=True, text=True, env={**os.environ, "SCRATCH_BUCKET": str(scratch_a)},
                           cwd="/", timeout=120)
        assert r.returncode == 0 and r.stdout.strip() == "6.0", r.stderr
        r = subprocess.run(["runuser", "-u", "jupyter-iso-b", "--", "ls", str(scratch_a)], capture_output=True)
        assert r.returncode != 0 and b"Permission denied" in r.stderr
    finally:
        for name in ("iso-a", "iso-b"):
            stack.stop_server(name)


def test_memory_limit_is_enforced_by_cgroup(stack):
    name = "memcap"
    stack.create_user(name)
    stack.spawn(name, "lab")
    try:
        pid = server_pid(stack, name)
        lines = Path(f"/proc/{pid}/cgroup").read_text().splitlines()
        mem = next(line.split(":", 2)[2] for line in lines if ":memory:" in line or line.startswith("0::"))
        base = Path("/sys/fs/cgroup/memory") if Path("/sys/fs/cgroup/memory").is_dir() else Path("/sys/fs/cgroup")
        group = base / mem.lstrip("/")
        limit_file = group / ("memory.limit_in_bytes" if (group / "memory.limit_in_bytes").exists() else "memory.max")
        limit = int(limit_file.read_text().strip())
        # the kernel rounds to pages
        assert abs(limit - LAB.memory.limit) < 4096 * 2, (limit, LAB.memory.limit)
        assert "jupyter-memcap" in mem
    finally:
        stack.stop_server(name)


def test_launcher_offers_only_apps_installed_here(stack):
    """lens-singleuser drops jupyter-server-proxy entries whose program is missing: no
    RStudio tile (and no /rstudio/ route answering 500) where there is no rserver."""
    import shutil

    import requests

    token = stack.create_user("tiles")
    stack.spawn("tiles", "lab")
    try:
        base = f"{stack.url}/user/tiles"
        auth = {"Authorization": f"token {token}"}
        info = requests.get(f"{base}/server-proxy/servers-info", headers=auth, timeout=30)
        assert info.status_code == 200, info.text
        names = {s["name"] for s in info.json()["server_processes"]}
        assert ("rstudio" in names) == bool(shutil.which("rserver"))
        assert "vscode" in names  # code-server comes with make test
        if "rstudio" not in names:
            assert requests.get(f"{base}/rstudio/", headers=auth, timeout=30).status_code == 404
        cmdline = open(f"/proc/{server_pid(stack, 'tiles')}/cmdline").read()
        assert "lens-singleuser" in cmdline
    finally:
        stack.stop_server("tiles")
