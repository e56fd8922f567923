from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from jupyter_ext.accounts import AccountError, AccountStore, hash_password, verify_password
from jupyter_ext.hub.settings import SettingsError, load_settings
from jupyter_ext.hub.state import ensure_state


@pytest.fixture
def store(tmp_path):
    return AccountStore.from_url(f"sqlite:///{tmp_path}/lens.sqlite")


def test_passwords_are_hashed_and_checked(store):
    password = store.create("alice")
    assert len(password.split("-")) == 4  # generated: 4 groups of 4 symbols (79 bits)
    row = store.engine.connect().exec_driver_sql("SELECT password_hash FROM lens_accounts").scalar()
    assert password not in row and row.startswith("scrypt$")
    assert store.check("alice", password)[0].username == "alice"
    assert store.check("alice", "wrong-password") == (None, None)
    assert store.check("nobody", password) == (None, None)
    assert verify_password("x" * 10, hash_password("x" * 10))
    assert not verify_password("x", "garbage")


def test_bad_input_is_refused(store):
    for name in ("Alice", "9lives", "a b", "x" * 30, "../etc"):
        with pytest.raises(AccountError):
            store.create(name, "long-enough-password")
    with pytest.raises(AccountError):
        store.create("bob", "short")
    store.create("bob", "long-enough-password")
    with pytest.raises(AccountError, match="already exists"):
        store.create("bob", "long-enough-password")


def test_disabled_and_expired_accounts_are_refused_with_a_reason(store):
    pw = store.create("carol", expires_at=datetime.utcnow() - timedelta(minutes=1))
    account, reason = store.check("carol", pw)
    assert account is None and "expired" in reason
    store.update("carol", expires_at=None, disabled=True)
    assert "disabled" in store.check("carol", pw)[1]
    store.update("carol", disabled=False)
    assert store.check("carol", pw)[0] is not None


def test_state_secrets_are_private_and_stable(tmp_path):
    state = ensure_state(tmp_path / "s")
    first = {p.name: p.read_text() for p in state.secrets_dir.iterdir()}
    assert all((state.secrets_dir / n).stat().st_mode & 0o777 == 0o600 for n in first)
    assert state.secrets_dir.stat().st_mode & 0o777 == 0o700
    ensure_state(tmp_path / "s")
    assert {p.name: p.read_text() for p in state.secrets_dir.iterdir()} == first


def test_settings_from_yaml_and_env(tmp_path):
    cfg = tmp_path / "lens.yaml"
    cfg.write_text("bind_url: http://127.0.0.1:9000\nports: {hub: 9081}\n")
    s = load_settings(str(cfg), env={"LENS_PROXY_API_PORT": "9001"})
    assert s["bind_url"] == "http://127.0.0.1:9000"
    assert s["ports"]["hub"] == 9081 and s["ports"]["proxy_api"] == 9001
    assert s["auth"]["type"] == "password"
    with pytest.raises(SettingsError, match="auth.type"):
        load_settings(None, env={"LENS_AUTH": "ldap"})
    with pytest.raises(SettingsError, match="client_id"):
        load_settings(None, env={"LENS_AUTH": "oidc"})
    s = load_settings(None, env={
        "LENS_AUTH": "oidc", "LENS_OIDC_CLIENT_ID": "x", "LENS_OIDC_AUTHORIZE_URL": "a",
        "LENS_OIDC_TOKEN_URL": "t", "LENS_OIDC_USERDATA_URL": "u", "LENS_OIDC_OAUTH_CALLBACK_URL": "c",
        "LENS_OIDC_ALLOWED_GROUPS": "lab, class-2026", "LENS_OIDC_ADMIN_GROUPS": "it",
        "LENS_OIDC_SCOPE": "openid profile email",
    })
    assert s["auth"]["oidc"]["client_id"] == "x"
    # lists from the environment are lists of names, not of characters
    assert s["auth"]["oidc"]["allowed_groups"] == ["lab", "class-2026"]
    assert s["auth"]["oidc"]["admin_groups"] == ["it"]
    assert s["auth"]["oidc"]["scope"] == ["openid", "profile", "email"]


async def test_refresh_ends_sessions_of_disabled_and_expired_accounts(tmp_path):
    from types import SimpleNamespace

    from jupyter_ext.hub.auth import LensPasswordAuthenticator

    url = f"sqlite:///{tmp_path}/lens.sqlite"
    store = AccountStore.from_url(url)
    for name in ("ok", "gone", "late"):
        store.create(name)
    store.update("gone", disabled=True)
    store.update("late", expires_at=datetime.utcnow() - timedelta(minutes=1))
    auth = LensPasswordAuthenticator(db_url=url)
    refresh = {n: await auth.refresh_user(SimpleNamespace(name=n)) for n in ("ok", "gone", "late", "api-only")}
    assert refresh == {"ok": True, "gone": False, "late": False, "api-only": True}


@pytest.mark.parametrize("text, match", [
    ("spawner: {gpu_count: -1}\n", "spawner.gpu_count"),
    ("spawner: {gpu_count: lots}\n", "spawner.gpu_count"),
    ("spawner: {gpu_count: true}\n", "spawner.gpu_count"),
    ("spawner: {budget_gate: maybe}\n", "spawner.budget_gate"),
    ("spawner: []\n", "spawner must be a mapping"),
    ("announcement: [1, 2]\n", "announcement"),
    ("culler: {activity_interval: 0}\n", "culler.activity_interval"),
    ("culler: {activity_interval: soon}\n", "culler.activity_interval"),
])
def test_new_spawner_settings_reject_nonsense_naming_the_file_and_key(tmp_path, text, match):
    cfg = tmp_path / "lens.yaml"
    cfg.write_text(text)
    with pytest.raises(SettingsError, match=match) as info:
        load_settings(str(cfg), env={})
    assert str(cfg) in str(info.value)


def test_new_spawner_settings_accept_good_values(tmp_path):
    cfg = tmp_path / "lens.yaml"
    cfg.write_text("spawner: {gpu_count: 2, budget_gate: false}\nannouncement: <b>Friday</b>\n")
    s = load_settings(str(cfg), env={})
    assert (s["spawner"]["gpu_count"], s["spawner"]["budget_gate"], s["announcement"]) == (2, False, "<b>Friday</b>")
    assert s["spawner"]["start_timeout"] == 120  # defaults kept
    assert s["culler"]["activity_interval"] == 300  # JupyterHub's own default


def test_costs_settings_bound_the_reconciliation():
    from traitlets import TraitError

    from jupyter_ext.costs.config import CostsSettings

    with pytest.raises(TraitError):
        CostsSettings(reconcile_interval=0)
    with pytest.raises(TraitError):
        CostsSettings(orphan_hold_seconds=5)


def test_an_unknown_name_costs_the_same_scrypt_work_as_a_known_one():
    """The hash checked for a name with no account has a real hash's scrypt
    parameters and lengths (the same work), and no password matches it."""
    from jupyter_ext import accounts

    real = accounts.hash_password("some password").split("$")
    dummy = accounts._DUMMY_HASH.split("$")
    assert dummy[:4] == real[:4]
    assert [len(part) for part in dummy] == [len(part) for part in real]
    for password in ("", "some password", "0" * 64):
        assert not accounts.verify_password(password, accounts._DUMMY_HASH)
