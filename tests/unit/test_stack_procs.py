"""Security hardening §12 without a hub: the launcher's process tree and port checks."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap

import pytest

from jupyter_ext.cli.main import CommandError
from jupyter_ext.cli.procs import port_free, port_holders


def test_a_taken_port_names_its_holder():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        assert not port_free("127.0.0.1", port)
        assert [pid for pid, _cmd in port_holders(port)] == [os.getpid()]
        from jupyter_ext.cli.hub import check_ports

        with pytest.raises(CommandError, match=f"port {port} \\(lens service\\) is in use by pid {os.getpid()}"):
            check_ports({"lens service": ("127.0.0.1", port), "hub": ("127.0.0.1", 0)})
    assert port_free("127.0.0.1", port)


def test_stop_tree_catches_processes_that_left_for_sessions_of_their_own():
    # Run as a separate process: a subreaper adopts orphans, which pytest itself should not.
    script = textwrap.dedent("""
        import os, subprocess, sys, time
        from jupyter_ext.cli import procs
        assert procs.become_subreaper()
        # a "service" in its own session that starts a daemon and exits: the daemon is orphaned
        svc = subprocess.Popen([sys.executable, "-c",
            "import subprocess, sys; subprocess.Popen(['sleep', '300'], start_new_session=True); "
            "print('ok', flush=True)"], stdout=subprocess.PIPE, start_new_session=True)
        svc.stdout.readline(); svc.wait()
        keeper = subprocess.Popen(["sh", "-c", "trap '' TERM; sleep 300 & wait"], start_new_session=True)
        time.sleep(0.3)
        tree = procs.descendants([os.getpid()])
        sleepers = [p for p in tree if open(f"/proc/{p}/cmdline", "rb").read().startswith(b"sleep")]
        assert len(sleepers) == 2, tree  # the orphan came back to us, not to PID 1
        t0 = time.monotonic()
        left = procs.stop_tree([os.getpid()], groups=[], deadline_term=t0 + 1, deadline_kill=t0 + 4)
        assert left == [], left
        assert not any(procs.alive(p) for p in sleepers + [keeper.pid])
        print("stopped", round(time.monotonic() - t0, 1))
    """)
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60,
                       env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("stopped")
