"""Fixtures for the atom engine tests: real unix accounts, a real SQLite DB, and a tiny
in-process ledger standing in until jupyter_ext.costs.ledger lands (same interface)."""

from __future__ import annotations

import itertools
import os
import pwd
import subprocess

import pytest
import sqlalchemy as sa

from jupyter_ext.atom.catalog import load_catalog

TEST_USERS = ("atomalice", "atombob")


class TinyBudgetExceeded(Exception):
    """Same attributes as jupyter_ext.costs.ledger.BudgetExceeded."""

    def __init__(self, estimate: int, remaining: int):
        self.estimate_micro, self.remaining_micro = estimate, remaining
        super().__init__(f"over budget: estimate {estimate} micro-USD, remaining {remaining}")


class TinyLedger:
    """Hold -> charge/refund bookkeeping in memory (TEST ONLY; the real one is costs.Ledger)."""

    def __init__(self, budgets: dict[str, int] | None = None):
        self.budgets = dict(budgets or {})
        self.holds: dict[str, tuple[list[str], int]] = {}
        self.charged: dict[str, int] = {}
        self.released: list[str] = []
        self._accts: dict[str, list[str]] = {}
        self._ids = itertools.count(1)

    def remaining(self, account: str) -> int:
        held = sum(a for accts, a in self.holds.values() if account in accts)
        spent = sum(v for k, v in self.charged.items() if account in self._accts[k])
        return self.budgets.get(account, 10**15) - held - spent

    def hold(self, accounts, amount_micro, category, ref, description=""):
        for acct in accounts:
            left = self.remaining(acct)
            if amount_micro > left:
                raise TinyBudgetExceeded(amount_micro, left)
        hid = f"h{next(self._ids)}"
        self.holds[hid] = (list(accounts), amount_micro)
        self._accts[hid] = list(accounts)
        return hid

    def charge(self, hold_id, actual_micro):
        self.holds.pop(hold_id)
        self.charged[hold_id] = actual_micro

    def release(self, hold_id):
        self.holds.pop(hold_id)
        self.released.append(hold_id)


@pytest.fixture
def ledger():
    return TinyLedger()


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
