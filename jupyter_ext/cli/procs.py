"""Process bookkeeping for `lens hub run`: the stack's process tree, stopping it,
and who holds a TCP port. Linux /proc only; no Jupyter imports."""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import signal
import socket
import time
from pathlib import Path

PR_SET_CHILD_SUBREAPER = 36


def become_subreaper() -> bool:
    """Orphaned descendants (services JupyterHub starts in sessions of their own,
    daemons, Dask schedulers...) are re-parented to this process instead of PID 1,
    so the whole stack stays one process tree under the launcher."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def reap_orphans(keep: int | None = None) -> None:
    """Collect exited children other than KEEP (the hub, which its Popen waits for)."""
    while True:
        try:
            info = os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        except ChildProcessError:
            return
        if info is None or info.si_pid == keep:
            return
        with contextlib.suppress(ChildProcessError):
            os.waitpid(info.si_pid, 0)


def _stat(pid: int) -> tuple[int, str] | None:
    """(ppid, state) of PID, or None if it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text.rsplit(")", 1)[1].split()
    return int(fields[1]), fields[0]


def alive(pid: int) -> bool:
    st = _stat(pid)
    return st is not None and st[1] not in ("Z", "X")


def descendants(roots: list[int]) -> list[int]:
    """Live processes whose parent chain reaches one of ROOTS (ROOTS included when alive)."""
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            st = _stat(int(entry.name))
            if st is not None and st[1] not in ("Z", "X"):
                children.setdefault(st[0], []).append(int(entry.name))
    found, todo = [], [p for p in roots if alive(p)]
    seen = set(todo)
    while todo:
        pid = todo.pop()
        found.append(pid)
        for child in children.get(pid, []):
            if child not in seen:
                seen.add(child)
                todo.append(child)
    return found


def _signal(pids: list[int], sig: int) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)


def stop_tree(roots: list[int], groups: list[int], deadline_term: float, deadline_kill: float,
              exclude: set[int] = frozenset()) -> list[int]:
    """SIGTERM every process under ROOTS (and in process GROUPS), SIGKILL what is left at
    DEADLINE_TERM, wait until DEADLINE_KILL (monotonic). Returns the PIDs still alive."""

    def current() -> list[int]:
        return sorted(set(descendants(roots)) - set(exclude) - {os.getpid()})

    def killpg(sig: int) -> None:
        for pgid in groups:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pgid, sig)

    killpg(signal.SIGTERM)
    termed: set[int] = set()
    killed = False
    while time.monotonic() < deadline_kill:
        reap_orphans()
        pids = current()
        if not pids:
            return []
        if time.monotonic() < deadline_term:
            _signal([p for p in pids if p not in termed], signal.SIGTERM)
            termed.update(pids)
        else:
            if not killed:
                killpg(signal.SIGKILL)
                killed = True
            _signal(pids, signal.SIGKILL)
        time.sleep(0.05)
    reap_orphans()
    return current()


# --- ports ---------------------------------------------------------------------------
def port_free(host: str, port: int) -> bool:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                return False
            raise
    return True


def listening_inodes(port: int) -> set[str]:
    """Socket inodes listening on PORT (any address), from /proc/net/tcp and tcp6."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) > 9 and fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(fields[9])
    return inodes


def port_holders(port: int) -> list[tuple[int, str]]:
    """(pid, command line) of the processes holding a socket listening on PORT."""
    targets = {f"socket:[{inode}]" for inode in listening_inodes(port)}
    holders = []
    if not targets:
        return holders
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            fds = os.listdir(f"/proc/{entry.name}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                link = os.readlink(f"/proc/{entry.name}/fd/{fd}")
            except OSError:
                continue
            if link in targets:
                try:
                    cmd = Path(f"/proc/{entry.name}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
                except OSError:
                    cmd = "?"
                holders.append((int(entry.name), cmd))
                break
    return holders
