"""The local state directory: databases, secrets, pid files and logs.

Everything in it belongs to the hub's account and only that account may read
it: files 0600, folders 0700, and the hub and its services create files with
umask 077. The exceptions are the folders user servers, jobs and Dask
clusters must reach (`SHARED_DIRS`): they are 0711 (traversable, not
listable) and hold per-user folders owned by those users. Dev-mode homes
(`homes/`) and scratch folders (`scratch/`) hold user data: their own modes
are left alone.
"""

from __future__ import annotations

import os
import secrets
import stat
from dataclasses import dataclass
from pathlib import Path

from ..db.engine import DB_FILE

PRIVATE_UMASK = 0o077
# Made 0711 by ensure_state: per-user scratch, the atom local and Slurm backends'
# per-job folders, Dask Gateway's per-cluster folders live in them.
SHARED_DIRS = ("scratch", "atom-local", "atom-slurm", "dask-clusters")
CREATED_SHARED_DIRS = ("scratch", "atom-local", "dask-clusters")  # atom-slurm: only if Slurm is used
USER_DATA_DIRS = ("homes", "scratch")  # their contents are the users' files
TOKENS = ("lens-service", "lens-gate", "idle-culler", "dask-gateway", "proxy-auth", "lens-cookie", "lens-admin")


@dataclass(frozen=True)
class StateDir:
    root: Path

    @property
    def secrets_dir(self) -> Path:
        return self.root / "secrets"

    @property
    def hub_db_url(self) -> str:
        return f"sqlite:///{self.root / 'jupyterhub.sqlite'}"

    @property
    def lens_db_url(self) -> str:
        return os.environ.get("LENS_DB_URL") or f"sqlite:///{self.root / DB_FILE}"

    @property
    def cookie_secret_file(self) -> Path:
        return self.secrets_dir / "jupyterhub_cookie_secret"

    @property
    def proxy_pid_file(self) -> Path:
        return self.root / "proxy.pid"

    def token(self, name: str) -> str:
        return (self.secrets_dir / f"{name}.token").read_text().strip()


def _write_secret(path: Path, value: str) -> bool:
    """Create `path` with mode 0600 unless it exists; True if created."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w") as f:
        f.write(value)
    return True


def ensure_state(root: str | os.PathLike) -> StateDir:
    """Create the state directory and its secrets once; later calls reuse them.

    Sets this process's umask to 077, so that what it (and the processes it
    starts: the hub, its services) creates in the state directory is private.
    """
    os.umask(PRIVATE_UMASK)
    state = StateDir(Path(root).resolve())
    state.root.mkdir(parents=True, exist_ok=True)
    os.chmod(state.root, 0o711)  # users' servers must not list it, but may traverse
    for name in CREATED_SHARED_DIRS:
        (state.root / name).mkdir(exist_ok=True)
        os.chmod(state.root / name, 0o711)
    state.secrets_dir.mkdir(mode=0o700, exist_ok=True)
    os.chmod(state.secrets_dir, 0o700)
    for name in TOKENS:
        _write_secret(state.secrets_dir / f"{name}.token", secrets.token_hex(32))
    _write_secret(state.cookie_secret_file, secrets.token_hex(32))
    for path in state.secrets_dir.iterdir():
        os.chmod(path, 0o600)
    return state


def secure_tree(root: str | os.PathLike) -> list[str]:
    """Make an existing state directory private (`lens hub run` at every start).

    Files of the hub's account lose every group/other bit; its folders become
    0700, or 0711 when users must pass through them (`SHARED_DIRS`, and any
    folder holding something another account owns). Entries of other accounts,
    symlinks and the contents of `USER_DATA_DIRS` are left alone. Returns the
    paths whose mode changed.
    """
    root = Path(root).resolve()
    uid = os.geteuid()
    changed: list[str] = []

    def chmod(path: str, st: os.stat_result, mode: int) -> None:
        if stat.S_IMODE(st.st_mode) != mode:
            os.chmod(path, mode)
            changed.append(path)

    def walk(path: str, top: bool) -> bool:
        """Fix PATH; True if it is, or holds, an entry of another account."""
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            return False
        if stat.S_ISLNK(st.st_mode):
            return False
        if st.st_uid != uid:
            return True
        if not stat.S_ISDIR(st.st_mode):
            chmod(path, st, stat.S_IMODE(st.st_mode) & 0o700)
            return False
        name = os.path.basename(path)
        foreign = False
        with os.scandir(path) as entries:
            for entry in list(entries):
                if top and name in USER_DATA_DIRS:  # users' data: only look at who owns it
                    foreign |= entry.stat(follow_symlinks=False).st_uid != uid
                else:
                    foreign |= walk(entry.path, top=False)
        shared = path == str(root) or (top and name in SHARED_DIRS) or foreign
        chmod(path, st, 0o711 if shared else 0o700)
        return foreign

    with os.scandir(root) as entries:
        for entry in list(entries):
            walk(entry.path, top=True)
    chmod(str(root), os.lstat(root), 0o711)
    return changed
