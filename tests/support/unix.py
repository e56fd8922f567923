"""Throwaway unix accounts for tests and benchmarks run as root."""

from __future__ import annotations

import pwd
import subprocess


def exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


def create_account(name: str) -> None:
    """A unix account with a home directory (no password; no login shell needed)."""
    if not exists(name):
        subprocess.run(["useradd", "--create-home", "--user-group", "--shell", "/bin/bash", name],
                       check=True, capture_output=True)


def remove_account(name: str) -> None:
    """Kill the account's processes, then delete it and its home."""
    if not exists(name):
        return
    subprocess.run(["pkill", "-KILL", "-u", name], capture_output=True, check=False)
    subprocess.run(["userdel", "--remove", name], capture_output=True, check=False)
