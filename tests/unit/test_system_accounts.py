"""LocalProfileSpawner.min_uid / max_uid: a hub name never maps onto a system account.

The spawner runs each user as the unix account its ``unix_name_template`` names.
If that account already exists with a system uid (below UID_MIN: root, daemon;
above UID_MAX: nobody) the spawn is refused before anything is chowned or run.
The live counterpart (a real ``useradd --system``) is
tests/security/test_usernames.py::test_a_hub_name_that_maps_onto_an_existing_system_account_is_refused.
"""

from __future__ import annotations

import os
import pwd
from types import SimpleNamespace

import pytest

import spawners.local as local
from spawners.errors import SpawnException
from spawners.local import LocalProfileSpawner, is_user_uid, login_defs_uid_max, login_defs_uid_min


def test_login_defs_bounds_are_read_and_fall_back(tmp_path):
    defs = tmp_path / "login.defs"
    defs.write_text("# comment UID_MIN 1\nUID_MIN\t\t 2000\nUID_MAX   50000\nSYS_UID_MIN 100\n")
    assert (login_defs_uid_min(str(defs)), login_defs_uid_max(str(defs))) == (2000, 50000)
    missing = str(tmp_path / "none")
    assert (login_defs_uid_min(missing), login_defs_uid_max(missing)) == (1000, 60000)


@pytest.mark.parametrize(("uid", "ok"), [(0, False), (1, False), (999, False), (1000, True),
                                          (60000, True), (60001, False), (65534, False)])
def test_only_uids_between_the_bounds_are_users(uid, ok):
    assert is_user_uid(uid, 1000, 60000) is ok


def spawner_for(name: str, tmp_path) -> LocalProfileSpawner:
    user = SimpleNamespace(name=name, id=1, url=f"/user/{name}/", groups=[], admin=False)
    # "{username}" (no "jupyter-" prefix) is the configuration that can land on a system account
    return LocalProfileSpawner(user=user, unix_name_template="{username}", budget_gate=False,
                               profiles_path=str(tmp_path / "none.yaml"), create_system_users=False)


def test_the_defaults_come_from_login_defs(tmp_path):
    spawner = spawner_for("alice", tmp_path)
    assert (spawner.min_uid, spawner.max_uid) == (login_defs_uid_min(), login_defs_uid_max())


@pytest.mark.parametrize("name", ["root", "daemon", "nobody"])
async def test_a_hub_name_mapping_onto_a_system_account_is_refused(name, tmp_path, monkeypatch):
    entry = pwd.getpwnam(name)  # present on every Debian system
    monkeypatch.setattr(local, "running_as_root", lambda: True)  # the per-user-account mode
    spawner = spawner_for(name, tmp_path)
    before = _owner_and_mode(entry.pw_dir)
    with pytest.raises(SpawnException) as err:
        await spawner.ensure_account()
    assert err.value.status_code == 403
    message = err.value.jupyterhub_message  # what the user sees
    assert "system account" in message and repr(name) in message
    # refused before its home was created, chowned or chmodded
    assert _owner_and_mode(entry.pw_dir) == before


def _owner_and_mode(path: str):
    """(uid, gid, mode) of ``path``, None if it does not exist (nobody's home,
    /nonexistent, is absent on a fresh Debian)."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return st.st_uid, st.st_gid, st.st_mode
