"""Security hardening §2: password strength, equal login time, throttling, no secrets in argv."""

from __future__ import annotations

import subprocess
import sys
import time
from types import SimpleNamespace

import pytest
from tornado import web

from jupyter_ext import accounts
from jupyter_ext.accounts import (
    AccountStore,
    password_entropy_bits,
    readable_password,
    strong_password,
)
from jupyter_ext.hub.login_throttle import LoginThrottle


def test_generated_passwords_have_the_promised_entropy():
    assert password_entropy_bits(accounts.STRONG_SYMBOLS) >= 64
    assert password_entropy_bits(accounts.READABLE_SYMBOLS) >= 40
    for make, symbols in ((strong_password, accounts.STRONG_SYMBOLS), (readable_password, accounts.READABLE_SYMBOLS)):
        samples = {make() for _ in range(200)}
        assert len(samples) == 200
        for pw in samples:
            chars = pw.replace("-", "")
            assert len(chars) == symbols and set(chars) <= set(accounts.ALPHABET)
    # no look-alikes on a printed card
    assert not set("0o1li") & set(accounts.ALPHABET)
    # every symbol is used (uniform choice over the whole alphabet)
    assert set("".join(strong_password() for _ in range(300)).replace("-", "")) == set(accounts.ALPHABET)


def test_admin_account_gets_a_strong_password(tmp_path):
    from jupyter_ext.cli.hub import ensure_admin
    from jupyter_ext.hub.state import ensure_state

    state = ensure_state(tmp_path / "state")
    pw = ensure_admin(state.root)
    assert len(pw.replace("-", "")) == accounts.STRONG_SYMBOLS
    assert ensure_admin(state.root) is None


def test_login_takes_as_long_for_unknown_users(tmp_path):
    store = AccountStore.from_url(f"sqlite:///{tmp_path}/lens.sqlite")
    store.create("alice", "alice-password-1")

    def timed(name):
        t0 = time.perf_counter()
        assert store.check(name, "wrong-password-9") == (None, None)
        return time.perf_counter() - t0

    timed("alice"), timed("nobody")  # warm up
    pairs = [(timed("alice"), timed("nobody")) for _ in range(9)]  # interleaved: load hits both
    # the fastest of each: what the work costs, without the machine's other load
    known, unknown = min(k for k, _ in pairs), min(u for _, u in pairs)
    # Before: 67 ms vs 0.4 ms. Both now run one scrypt with the same parameters.
    assert 0.6 < unknown / known < 1.6, (known, unknown)


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def test_throttle_backs_off_exponentially_and_forgets():
    clock = Clock()
    t = LoginThrottle(limit=5, base=2, cap=60, forget_after=600, clock=clock)
    assert [t.failed("u") for _ in range(4)] == [0, 0, 0, 0]
    assert t.retry_after("u") == 0
    assert t.failed("u") == 2 and t.retry_after("u") == 2
    clock.now += 2
    assert t.retry_after("u") == 0
    assert t.failed("u") == 4
    clock.now += 4
    assert [t.failed("u") for _ in range(4)] == [8, 16, 32, 60]  # capped
    assert t.retry_after("other") == 0
    t.succeeded("u")
    assert t.retry_after("u") == 0
    t.failed("v")
    clock.now += 601
    assert t.failed("v") == 0  # forgotten: counts from 1 again
    with pytest.raises(ValueError):
        LoginThrottle(limit=0)


def test_throttle_memory_is_bounded_and_keeps_locked_keys():
    clock = Clock()
    t = LoginThrottle(limit=2, base=100, cap=100, max_keys=50, clock=clock)
    t.failed("victim"), t.failed("victim")
    for i in range(1000):  # a flood of one-off names must not evict a locked key
        clock.now += 0.01
        t.failed(f"name-{i}")
    assert len(t) == 50
    assert t.retry_after("victim") > 0
    assert t.retry_after("name-999") == 0 and "name-999" in t._entries and "name-0" not in t._entries


def _handler(ip):
    return SimpleNamespace(request=SimpleNamespace(remote_ip=ip, headers={}))


def test_client_address_is_the_proxys_last_forwarded_entry():
    from jupyter_ext.hub.auth import client_address

    spoofed = SimpleNamespace(request=SimpleNamespace(
        remote_ip="6.6.6.6", headers={"X-Real-Ip": "6.6.6.6", "X-Forwarded-For": "6.6.6.6, 10.1.2.3"}))
    assert client_address(spoofed) == "10.1.2.3"
    assert client_address(_handler("10.0.0.9")) == "10.0.0.9"
    assert client_address(None) == "unknown"


async def test_authenticator_throttles_per_user_and_per_address(tmp_path):
    from jupyter_ext.hub.auth import LensPasswordAuthenticator

    url = f"sqlite:///{tmp_path}/lens.sqlite"
    AccountStore.from_url(url).create("alice", "alice-password-1")
    auth = LensPasswordAuthenticator(db_url=url, failed_logins_per_user=5, failed_logins_per_address=8,
                                     throttle_base_seconds=30)
    ok = {"username": "alice", "password": "alice-password-1"}
    assert (await auth.authenticate(_handler("10.0.0.1"), ok))["name"] == "alice"
    for _ in range(5):
        assert await auth.authenticate(_handler("10.0.0.1"), {**ok, "password": "nope-nope"}) is None
    # the right password is refused too, from any address, with a clear message
    for ip in ("10.0.0.1", "10.0.0.2"):
        with pytest.raises(web.HTTPError) as info:
            await auth.authenticate(_handler(ip), ok)
        assert info.value.status_code == 429
        assert "Too many failed logins: try again in" in info.value.jupyterhub_message
    # per address: 8 failures over many (unknown) names lock the address for everyone
    for i in range(8):
        assert await auth.authenticate(_handler("10.9.9.9"), {"username": f"x{i}", "password": "guess-1234"}) is None
    AccountStore.from_url(url).create("bob", "bob-password-1")
    with pytest.raises(web.HTTPError, match="Too many"):
        await auth.authenticate(_handler("10.9.9.9"), {"username": "bob", "password": "bob-password-1"})
    assert (await auth.authenticate(_handler("10.0.0.3"), {"username": "bob", "password": "bob-password-1"}))


def _lens(*argv, **kw):
    return subprocess.run([sys.executable, "-m", "jupyter_ext.cli.main", *argv], capture_output=True, text=True, **kw)


def test_cli_takes_no_secret_from_argv(tmp_path):
    state = str(tmp_path / "state")
    # the argv form is gone: a value after --password is not accepted
    r = _lens("users", "--state", state, "add", "carol", "--password", "carol-password-1")
    assert r.returncode != 0 and "unrecognized arguments" in r.stderr
    r = _lens("users", "--state", state, "add", "carol", "--password-stdin", input="carol-password-1\n")
    assert r.returncode == 0, r.stderr
    assert "carol-password-1" not in r.stdout
    secret = tmp_path / "pw"
    secret.write_text("carol-password-2\n")
    r = _lens("users", "--state", state, "passwd", "carol", "--password-file", str(secret))
    assert r.returncode == 0, r.stderr
    store = AccountStore.from_url(f"sqlite:///{state}/lens.sqlite")
    assert store.check("carol", "carol-password-2")[0] is not None
    # --password alone prompts, which needs a terminal
    r = _lens("users", "--state", state, "passwd", "carol", "--password", input="x\n")
    assert r.returncode == 2 and "--password-stdin" in r.stderr
    r = _lens("workshop", "--state", state, "--token", "abc", "list")
    assert r.returncode != 0
    r = _lens("workshop", "--state", state, "--token-file", str(tmp_path / "missing"), "close", "w1")
    assert r.returncode == 2 and "--token-file" in r.stderr
