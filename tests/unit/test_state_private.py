"""Security hardening §1: the state directory is private to the hub's account."""

from __future__ import annotations

import os
import stat

import pytest

from jupyter_ext.hub.state import ensure_state, secure_tree


def mode(path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


@pytest.fixture
def restore_umask():
    old = os.umask(0o022)
    os.umask(old)
    yield
    os.umask(old)


def test_ensure_state_sets_a_private_umask_and_shared_dirs(tmp_path, restore_umask):
    os.umask(0o022)
    state = ensure_state(tmp_path / "state")
    assert os.umask(0o077) == 0o077
    (state.root / "lens.sqlite").write_text("x")
    assert mode(state.root / "lens.sqlite") == 0o600
    assert mode(state.root) == 0o711
    for name in ("scratch", "atom-local", "dask-clusters"):
        assert mode(state.root / name) == 0o711, name
    assert mode(state.secrets_dir) == 0o700


def test_an_old_state_directory_is_made_private(tmp_path, restore_umask):
    os.umask(0o022)  # how an old `make hub` left it
    root = tmp_path / "state"
    root.mkdir()
    os.chmod(root, 0o755)
    old = ["lens.sqlite", "lens.sqlite-wal", "lens.sqlite-shm", "jupyterhub.sqlite", "stack.log", "proxy.pid"]
    for name in old:
        (root / name).write_text("x")
    (root / "workshops" / "w1").mkdir(parents=True)
    (root / "workshops" / "w1" / "credentials.csv").write_text("pw")
    job = root / "atom-local" / "local-1"
    (job / "tasks").mkdir(parents=True)
    (job / "job.json").write_text("{}")
    (job / "user").mkdir()
    (root / "homes" / "alice").mkdir(parents=True)
    (root / "homes" / "alice" / "notes.txt").write_text("mine")
    os.chmod(root / "homes" / "alice" / "notes.txt", 0o644)
    script = root / "run.sh"
    script.write_text("#!/bin/sh\n")
    os.chmod(script, 0o755)
    (root / "link").symlink_to("/etc/passwd")
    as_root = os.geteuid() == 0
    if as_root:  # the job's own folder belongs to its user
        os.chown(job / "user", 65534, 65534)

    ensure_state(root)
    changed = secure_tree(root)
    assert changed
    for name in old:
        assert mode(root / name) == 0o600, name
    assert mode(root / "workshops") == mode(root / "workshops" / "w1") == 0o700
    assert mode(root / "workshops" / "w1" / "credentials.csv") == 0o600
    assert mode(script) == 0o700  # executable bit kept for the owner only
    assert mode(root) == mode(root / "atom-local") == mode(root / "scratch") == 0o711
    assert mode(job / "tasks") == 0o700 and mode(job / "job.json") == 0o600
    assert mode(job) == (0o711 if as_root else 0o700)  # users pass through to their own folder
    if as_root:
        assert mode(job / "user") == 0o755  # another account's: left alone
    assert mode(root / "homes") == 0o700
    assert mode(root / "homes" / "alice" / "notes.txt") == 0o644  # users' data: left alone
    assert os.readlink(root / "link") == "/etc/passwd" and mode("/etc/passwd") == 0o644
    assert secure_tree(root) == []  # a second start changes nothing
