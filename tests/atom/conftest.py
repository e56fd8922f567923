"""Fixtures for the atom engine tests: real unix accounts, and a real SQLite DB holding
the jobs and the real costs ledger."""

from __future__ import annotations

import os
import pwd
import subprocess

import pytest
import sqlalchemy as sa

from jupyter_ext.atom.catalog import load_catalog
from jupyter_ext.costs.ledger import Ledger

TEST_USERS = ("atomalice", "atombob")


class LedgerView:
    """The real costs Ledger (on the test's SQLite), plus read-only views of its holds
    for assertions: ``holds`` (open: id -> (accounts, amount)), ``charged`` (id ->
    actual) and ``released`` (ids). The JobManager only ever sees the real Ledger API."""

    def __init__(self, ledger: Ledger):
        self.real = ledger

    def __getattr__(self, name):
        return getattr(self.real, name)

    def _rows(self, status: str):
        with self.real.engine.connect() as conn:
            rows = conn.execute(sa.text(
                "SELECT id, amount_micro, actual_micro FROM lens_holds WHERE status = :s"), {"s": status}).all()
            accounts = {}
            for hold_id, account in conn.execute(sa.text(
                    "SELECT hold_id, account FROM lens_entries WHERE kind = 'hold' ORDER BY id")):
                accounts.setdefault(hold_id, []).append(account)
        return rows, accounts

    @property
    def holds(self) -> dict[int, tuple[list[str], int]]:
        rows, accounts = self._rows("open")
        return {r.id: (accounts[r.id], r.amount_micro) for r in rows}

    @property
    def charged(self) -> dict[int, int]:
        return {r.id: r.actual_micro for r in self._rows("charged")[0]}

    @property
    def released(self) -> list[int]:
        return [r.id for r in self._rows("released")[0]]


@pytest.fixture
def make_ledger(engine):
    def make(budgets: dict[str, int] | None = None) -> LedgerView:
        ledger = Ledger(engine)
        for account, amount in (budgets or {}).items():
            ledger.set_budget(account, amount)
        return LedgerView(ledger)

    return make


@pytest.fixture
def ledger(make_ledger):
    return make_ledger()


@pytest.fixture
def engine(tmp_path):
    return sa.create_engine(f"sqlite:///{tmp_path}/lens.sqlite")


@pytest.fixture(scope="session")
def catalog():
    return load_catalog()


def ensure_unix_user(name: str) -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(name)
    except KeyError:
        subprocess.run(["useradd", "--no-create-home", "--shell", "/usr/sbin/nologin", name],
                       check=True)
        return pwd.getpwnam(name)


@pytest.fixture(scope="session")
def unix_users():
    """Real unix accounts jupyter-<name> for the test users (root only)."""
    if os.geteuid() != 0:
        return {}
    return {u: ensure_unix_user(f"jupyter-{u}") for u in TEST_USERS}


@pytest.fixture
def shared_dir():
    """A state directory other unix users can traverse (pytest's tmp_path is 0700 root)."""
    import shutil
    import tempfile

    path = tempfile.mkdtemp(prefix="lens-atom-test-", dir="/tmp")
    os.chmod(path, 0o711)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _sinfo_ok(conf: str) -> bool:
    try:
        return subprocess.run(["sinfo", "-h"], env={**os.environ, "SLURM_CONF": conf},
                              capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


@pytest.fixture(scope="session")
def slurm_conf():
    """SLURM_CONF of a running cluster: $SLURM_CONF if it answers, else scripts/slurm-up.sh."""
    from tests.conftest import require

    conf = os.environ.get("SLURM_CONF", "")
    if conf and _sinfo_ok(conf):
        return conf
    require(os.geteuid() == 0 and os.path.exists("/usr/sbin/slurmctld"),
            "Slurm tests need root and slurm-wlm (make test installs them)")
    state = os.environ.get("LENS_STATE_DIR") or "/tmp/slurmtest"
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    out = subprocess.run(["bash", os.path.join(root, "scripts", "slurm-up.sh"), state],
                         capture_output=True, text=True, timeout=120)
    require(out.returncode == 0, f"slurm-up.sh failed: {out.stderr[-500:]}")
    return out.stdout.strip().splitlines()[-1]
