"""A throwaway local PostgreSQL cluster (Debian's postgresql package) for ledger tests."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
from contextlib import contextmanager

from tests.support.moto import free_port


def pg_bindir() -> str | None:
    found = shutil.which("initdb")
    if found:
        return os.path.dirname(os.path.realpath(found))
    dirs = sorted(glob.glob("/usr/lib/postgresql/*/bin"))
    return dirs[-1] if dirs else None


def _as_postgres(argv: list[str]) -> list[str]:
    # PostgreSQL refuses to run as root; run it as the postgres account then.
    return ["runuser", "-u", "postgres", "--", *argv] if os.geteuid() == 0 else argv


@contextmanager
def postgres_cluster():
    """Start PostgreSQL on a loopback port in a temp dir; yield a SQLAlchemy URL."""
    bindir = pg_bindir()
    if not bindir:
        raise RuntimeError("PostgreSQL binaries not found")
    root = tempfile.mkdtemp(prefix="lens-pg-")
    os.chmod(root, 0o755)
    data = os.path.join(root, "data")
    os.mkdir(data, 0o700)
    if os.geteuid() == 0:
        shutil.chown(data, "postgres", "postgres")
    port = free_port()
    subprocess.run(_as_postgres([f"{bindir}/initdb", "-D", data, "-A", "trust", "-U", "lens",
                                 "--no-sync", "-E", "UTF8"]), check=True, capture_output=True, timeout=120)
    opts = f"-p {port} -k {data} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=120"
    subprocess.run(_as_postgres([f"{bindir}/pg_ctl", "-D", data, "-o", opts, "-w", "-t", "60",
                                 "-l", f"{data}/log", "start"]), check=True, capture_output=True, timeout=90)
    try:
        subprocess.run(_as_postgres([f"{bindir}/createdb", "-h", "127.0.0.1", "-p", str(port),
                                     "-U", "lens", "ledger"]), check=True, capture_output=True, timeout=60)
        yield f"postgresql+psycopg://lens@127.0.0.1:{port}/ledger"
    finally:
        subprocess.run(_as_postgres([f"{bindir}/pg_ctl", "-D", data, "-m", "immediate", "stop"]),
                       capture_output=True, timeout=60)
        shutil.rmtree(root, ignore_errors=True)
