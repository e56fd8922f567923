"""Shared helpers for the archive tests: small deterministic trees and tree comparison."""

from __future__ import annotations

import os
import random

import psutil

from jupyter_ext.archive.engine import ArchiveEngine
from jupyter_ext.archive.repository import Principal

ALICE = Principal("alice", ("climate",))
BOB = Principal("bob", ("ocean",))


def engine(repo: str, **kw) -> ArchiveEngine:
    opts = {"cache_dir": "","repository": repo, "chunk_avg_size": 16 * 1024, "pack_size": 128 * 1024,
            "workers": 2, "upload_workers": 2, "local_fsync": False, "poll_interval": 0.2,
            # small restores too go through writer processes, as big ones do by default
            "restore_processes": 2, "restore_processes_from": 1}
    opts.update(kw)
    return ArchiveEngine(**opts)


def is_helper(p: psutil.Process, module: str) -> bool:
    """True if ``p`` runs ``jupyter_ext.archive.<module>``; a process that exited
    (or is a zombie) between the listing and the look is not one."""
    try:
        return f"jupyter_ext.archive.{module}" in " ".join(p.cmdline())
    except psutil.Error:
        return False


def helper_processes(module: str) -> list[psutil.Process]:
    """This test process's live descendants running ``jupyter_ext.archive.<module>``."""
    return [p for p in psutil.Process().children(recursive=True) if is_helper(p, module)]


def still_running(p: psutil.Process) -> bool:
    """Whether ``p`` runs (a zombie, or a process gone meanwhile, does not)."""
    try:
        return p.is_running() and p.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def make_tree(root: str, seed: int = 0, scale: int = 1) -> str:
    """A small mixed tree: random (incompressible) data, text, nested dirs, a symlink."""
    rng = random.Random(seed)
    os.makedirs(os.path.join(root, "data", "nested"), exist_ok=True)
    with open(os.path.join(root, "data", "random.bin"), "wb") as f:
        f.write(rng.randbytes(300_000 * scale))
    with open(os.path.join(root, "data", "table.csv"), "w") as f:
        for i in range(8000 * scale):
            f.write(f"{i},{rng.random():.6f},{rng.choice(['a', 'b', 'c'])}\n")
    with open(os.path.join(root, "data", "nested", "notes.txt"), "w") as f:
        f.write("lens archive test\n" * 2000)
    with open(os.path.join(root, "data", "empty"), "w"):
        pass
    os.chmod(os.path.join(root, "data", "nested", "notes.txt"), 0o640)
    os.symlink("nested/notes.txt", os.path.join(root, "data", "link"))
    return os.path.join(root, "data")


def snapshot(root: str) -> dict:
    """path -> (type, mode, content or link target) for byte-exact comparisons."""
    out = {}
    for dirpath, dirs, files in os.walk(root):
        for name in dirs + files:
            full = os.path.join(dirpath, name)
            rel = os.path.relpath(full, root)
            st = os.lstat(full)
            if os.path.islink(full):
                out[rel] = ("link", os.readlink(full))
            elif os.path.isdir(full):
                out[rel] = ("dir", st.st_mode & 0o777)
            else:
                with open(full, "rb") as f:
                    out[rel] = ("file", st.st_mode & 0o777, st.st_mtime_ns, f.read())
    return out
