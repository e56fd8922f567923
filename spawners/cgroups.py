"""Memory limits for local servers through the kernel's memory cgroup.

Used when the hub runs as root and a writable memory controller exists
(cgroup v2 `memory.max`, or v1 `memory.limit_in_bytes`). Elsewhere the limit
is only advertised (MEM_LIMIT) and enforced on Kubernetes.
"""

from __future__ import annotations

import os
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")


def _own_cgroup(controller: str) -> str | None:
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if controller in controllers.split(","):
            return path
    return None


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
    """Move the calling process into `group` (call from preexec, before setuid)."""
    (group / "cgroup.procs").write_text(str(os.getpid()))


def remove_cgroup(group: Path | None) -> None:
    if group is None:
        return
    try:
        group.rmdir()
    except OSError:
        pass  # still has processes or already gone
