"""Packaging: entry points, the server extension enabled from the wheel, magics auto-loaded."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

BIN = Path(sys.executable).parent


def test_entry_points():
    spawners = {ep.name: ep.value for ep in entry_points(group="jupyterhub.spawners")}
    assert spawners["lens-local"] == "spawners.local:LocalProfileSpawner"
    assert spawners["lens-kube"] == "spawners.kube:KubeProfileSpawner"
    scripts = {ep.name: ep.value for ep in entry_points(group="console_scripts")}
    assert scripts["lens"] == "jupyter_ext.cli.main:main"
    assert (BIN / "lens").exists()


def test_server_extension_is_enabled_and_ok():
    r = subprocess.run([str(BIN / "jupyter"), "server", "extension", "list"], capture_output=True, text=True, timeout=120)
    out = r.stdout + r.stderr
    assert "jupyter_ext \x1b[32menabled" in out or "jupyter_ext enabled" in out
    assert "jupyter_ext 0.1.0 \x1b[32mOK" in out or "jupyter_ext 0.1.0 OK" in out


def test_magics_are_autoloaded_in_kernels():
    """A real kernel of this environment has %atom, %costs and %archive with no %load_ext."""
    from jupyter_client.manager import start_new_kernel

    km, kc = start_new_kernel(kernel_name="python3")
    try:
        code = (
            "ip = get_ipython(); m = ip.magics_manager.magics\n"
            "print(sorted(k for k in ('atom','costs','archive','archives','restore') if k in m['line']))"
        )
        msg_id = kc.execute(code)
        output = []
        while True:
            msg = kc.get_iopub_msg(timeout=60)
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            if msg["msg_type"] == "stream":
                output.append(msg["content"]["text"])
            if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                break
        assert "['archive', 'archives', 'atom', 'costs', 'restore']" in "".join(output)
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)


def test_cli_help_lists_commands():
    r = subprocess.run([str(BIN / "lens"), "--help"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "hub" in r.stdout and "users" in r.stdout
    r = subprocess.run([str(BIN / "lens"), "users", "--state", "/nonexistent-dir/x", "add", "Bad Name"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode != 0
