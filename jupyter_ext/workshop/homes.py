"""Seat homes: where they are, and a tar.zst archive of each on close.

The archive engine (jupyter_ext/archive) is built in parallel; until it lands,
``archive_home`` writes one tar.zst per seat under the state directory.
Switch the single call site in ``ops.close_workshop`` to the engine then.
"""

from __future__ import annotations

import os
import tarfile
from pathlib import Path

import zstandard


def seat_home(username: str, state_root: Path) -> Path:
    """The home LocalProfileSpawner gives a hub user (root: /home/jupyter-NAME)."""
    if os.geteuid() == 0:
        return Path("/home") / f"jupyter-{username}"
    return Path(state_root) / "homes" / username


def archive_home(home: Path, dest: Path, level: int = 3) -> Path | None:
    """tar.zst of `home` into `dest` (mode 0600); None when there is no home."""
    if not home.is_dir():
        return None
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_suffix(dest.suffix + ".part")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as raw:
        with zstandard.ZstdCompressor(level=level).stream_writer(raw) as zst:
            with tarfile.open(fileobj=zst, mode="w|") as tar:
                tar.add(str(home), arcname=home.name)
    os.replace(tmp, dest)
    return dest
