"""Linux control groups: memory limits of local servers, one group per local atom task.

- Servers (spawners/local.py): when the hub runs as root and a writable memory controller
  exists (cgroup v2 ``memory.max``, or v1 ``memory.limit_in_bytes``), each server runs in a
  group holding its limit. Elsewhere the limit is only advertised (MEM_LIMIT) and enforced
  on Kubernetes.
- Atom tasks (jupyter_ext/atom/backends/local.py and its supervisor): as root with a
  writable cgroup v2 hierarchy (pure v2 at /sys/fs/cgroup, or the hybrid ``unified``
  mount), each task runs in its own group, so every process it starts (daemonized ones
  included) is found, metered until the last one exits, and killed as a whole.

Stdlib only and free of lens imports: the task supervisor, run as ``python -I``, loads
this file by its path.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")
JOBS_GROUP = "lens-jobs"


def _own_cgroup(controller: str) -> str | None:
    """This process's group in the hierarchy of ``controller`` ("" is cgroup v2)."""
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if controller in controllers.split(","):
            return path
    return None


# --- memory limits of servers ------------------------------------------------------------
def memory_cgroup_parent() -> tuple[Path, str] | None:
    """(directory under which per-server groups are made, limit file name), or None."""
    if os.geteuid() != 0:
        return None
    v1 = _own_cgroup("memory")
    if v1 is not None and (CGROUP_ROOT / "memory").is_dir():
        parent = CGROUP_ROOT / "memory" / v1.lstrip("/") / "lens"
        limit_file = "memory.limit_in_bytes"
    elif (CGROUP_ROOT / "cgroup.controllers").exists():
        v2 = _own_cgroup("") or "/"
        parent = CGROUP_ROOT / v2.lstrip("/") / "lens"
        limit_file = "memory.max"
    else:
        return None
    try:
        parent.mkdir(exist_ok=True)
    except OSError:
        return None
    return (parent, limit_file) if os.access(parent, os.W_OK) else None


def prepare_memory_cgroup(name: str, limit_bytes: int) -> Path | None:
    """Create (or reuse) the group for one server with its limit; None if unsupported."""
    found = memory_cgroup_parent()
    if not found or not limit_bytes:
        return None
    parent, limit_file = found
    group = parent / name
    try:
        group.mkdir(exist_ok=True)
        (group / limit_file).write_text(str(int(limit_bytes)))
    except OSError:
        return None
    return group


def join_cgroup(group: Path) -> None:
    """Move the calling process into ``group`` (root; from preexec, before setuid)."""
    (Path(group) / "cgroup.procs").write_text(str(os.getpid()))


def remove_cgroup(group: Path | None) -> None:
    if group is None:
        return
    try:
        Path(group).rmdir()
    except OSError:
        pass  # still has processes or already gone


# --- one group per atom task (cgroup v2) ------------------------------------------------
def cgroup2_mount() -> Path | None:
    """Where the cgroup v2 hierarchy is mounted (/sys/fs/cgroup or .../unified), or None."""
    try:
        lines = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        fields = line.split()
        if "-" in fields:
            sep = fields.index("-")
            if sep + 1 < len(fields) and fields[sep + 1] == "cgroup2":
                return Path(fields[4])
    return None


def own_cgroup2() -> Path | None:
    """The directory of this process's own cgroup v2 group, or None."""
    mount, own = cgroup2_mount(), _own_cgroup("")
    if mount is None or own is None:
        return None
    return mount / own.lstrip("/")


def job_cgroup_parent() -> Path | None:
    """The group (made if missing) under which each atom task gets its own group.

    None unless running as root with a writable cgroup v2 hierarchy that can kill a
    whole group (``cgroup.kill``, Linux 5.14+); callers then fall back to process groups.
    """
    if os.geteuid() != 0:
        return None
    own = own_cgroup2()
    if own is None:
        return None
    parent = own / JOBS_GROUP
    try:
        parent.mkdir(exist_ok=True)
    except OSError:
        return None
    if not (os.access(parent, os.W_OK) and (parent / "cgroup.kill").exists()):
        return None
    return parent


def create_cgroup(group: Path) -> Path:
    """Make ``group`` (it may exist already); raises OSError when that is impossible."""
    group = Path(group)
    group.mkdir(exist_ok=True)
    return group


def cgroup_pids(group: Path) -> list[int]:
    """The processes in ``group`` (none once it is gone)."""
    try:
        return [int(p) for p in (Path(group) / "cgroup.procs").read_text().split()]
    except (OSError, ValueError):
        return []


def cgroup_empty(group: Path) -> bool:
    """Has the last process of ``group`` (and of any group below it) exited?"""
    try:
        for line in (Path(group) / "cgroup.events").read_text().splitlines():
            key, _, value = line.partition(" ")
            if key == "populated":
                return value.strip() == "0"
    except OSError:
        pass  # gone, or cgroup v1 (no cgroup.events): its cgroup.procs says
    return not cgroup_pids(group)


def signal_cgroup(group: Path, sig: int) -> None:
    """Send ``sig`` to every process of ``group``; SIGKILL kills the group as a whole."""
    if sig == signal.SIGKILL:
        try:
            (Path(group) / "cgroup.kill").write_text("1")
            return
        except OSError:
            pass  # gone, or no cgroup.kill: one process at a time
    for pid in cgroup_pids(group):
        try:
            os.kill(pid, sig)
        except (ProcessLookupError, PermissionError):
            pass


def kill_cgroup(group: Path, timeout: float = 5.0) -> bool:
    """Kill every process of ``group``, wait (up to ``timeout``) until it is empty and
    remove it. True when the group is gone or empty."""
    deadline = time.monotonic() + timeout
    while not cgroup_empty(group):
        signal_cgroup(group, signal.SIGKILL)
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    remove_cgroup(group)
    return True
