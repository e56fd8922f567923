"""The desktop profile's pure parts: which applications the form lists, when its tile shows."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from jupyter_ext.server.singleuser import DESKTOP_ENTRY, XSTARTUP, available, use_lens_xstartup
from spawners.desktop_apps import describe_desktop, present_applications, with_desktop_applications
from spawners.profiles import load_catalog

REPO = Path(__file__).resolve().parents[2]


def test_description_lists_the_applications_installed():
    catalog = load_catalog(REPO / "hub_config/profiles.yaml")
    installed = {"xfce4-terminal", "thunar", "ncview"}
    described = with_desktop_applications(catalog, which=lambda p: p if p in installed else None)
    text = described.get("desktop").description
    assert text.endswith("Applications here: Terminal, Files (Thunar), ncview (netCDF viewer).")
    assert "QGIS" not in text
    assert described.get("lab").description == catalog.get("lab").description  # only desktops
    assert present_applications(which=lambda p: None) == []
    assert "make desktop" in describe_desktop("A desktop.", [])


def test_desktop_tile_needs_every_program(tmp_path):
    assert not available(DESKTOP_ENTRY, path=str(tmp_path))
    for program in ("vncserver", "xfce4-session"):
        (tmp_path / program).write_text("#!/bin/sh\n")
        (tmp_path / program).chmod(0o755)
    assert not available(DESKTOP_ENTRY, path=str(tmp_path))  # no dbus-launch yet
    (tmp_path / "dbus-launch").write_text("#!/bin/sh\n")
    (tmp_path / "dbus-launch").chmod(0o755)
    assert available(DESKTOP_ENTRY, path=str(tmp_path))


def test_lens_xstartup_is_the_default_and_executable():
    env = {}
    use_lens_xstartup(env)
    assert env["JUPYTER_REMOTE_DESKTOP_PROXY_XSTARTUP"] == XSTARTUP
    assert os.stat(XSTARTUP).st_mode & stat.S_IXOTH
    assert "--exit-with-session" in Path(XSTARTUP).read_text()
    own = {"JUPYTER_REMOTE_DESKTOP_PROXY_XSTARTUP": "/etc/site/xstartup"}
    use_lens_xstartup(own)
    assert own["JUPYTER_REMOTE_DESKTOP_PROXY_XSTARTUP"] == "/etc/site/xstartup"


def test_a_stopped_servers_leftovers_are_ended():
    """What a server started and left running (a desktop's Xvnc and session, a background
    job) ends with it: its process group gets SIGTERM, then SIGKILL."""
    import asyncio
    import signal
    import subprocess
    import sys

    from spawners.local import end_leftovers, process_group_alive

    # a "server" (session leader) with a child that ignores SIGTERM and one that does not
    server = subprocess.Popen(
        [sys.executable, "-c", "import subprocess, sys, time\n"
         "subprocess.Popen(['sleep', '300'])\n"
         "subprocess.Popen([sys.executable, '-c', 'import signal, time; "
         "signal.signal(signal.SIGTERM, signal.SIG_IGN); print(1, flush=True); time.sleep(300)'])\n"
         "time.sleep(300)"],
        start_new_session=True, stdout=subprocess.PIPE)
    assert server.stdout.readline().strip() == b"1"  # the stubborn child is up
    server.send_signal(signal.SIGKILL)  # the server itself is gone; its children are not
    server.wait()
    assert process_group_alive(server.pid)
    assert asyncio.run(asyncio.wait_for(end_leftovers(server.pid, None, grace=0.5), 20))
    assert not process_group_alive(server.pid)
    assert asyncio.run(end_leftovers(server.pid, None))  # nothing left: a no-op
