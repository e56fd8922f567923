"""The local state directory: databases, secrets (0600) and pid files."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from ..db.engine import DB_FILE

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
    """Create the state directory and its secrets once; later calls reuse them."""
    state = StateDir(Path(root).resolve())
    state.root.mkdir(parents=True, exist_ok=True)
    os.chmod(state.root, 0o711)  # users' servers must not list it, but may traverse
    state.secrets_dir.mkdir(mode=0o700, exist_ok=True)
    os.chmod(state.secrets_dir, 0o700)
    for name in TOKENS:
        _write_secret(state.secrets_dir / f"{name}.token", secrets.token_hex(32))
    _write_secret(state.cookie_secret_file, secrets.token_hex(32))
    for path in state.secrets_dir.iterdir():
        os.chmod(path, 0o600)
    return state
