"""LensPasswordAuthenticator: admin-created local accounts with hashed passwords.

Accounts are made by an admin (`lens users add NAME`, or `lens workshop
create`); there is no self-signup. Expired or disabled accounts are refused
with a message that says so. Failed logins are throttled per user name and per
client address (jupyter_ext/hub/login_throttle.py); a login takes as long for
an unknown name as for a real account.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

from tornado import web
from traitlets import Float, Integer, Unicode, default

from jupyter_ext.accounts import USERNAME_RE, AccountStore
from jupyter_ext.db.engine import default_url
from jupyter_ext.hub.login_throttle import LoginThrottle
from jupyter_ext.hub.names import FoldedUsernames
from jupyter_ext.usernames import fold_username


def client_address(handler) -> str:
    """The client's address for throttling. Behind configurable-http-proxy the hub sees
    127.0.0.1; the proxy appends the real peer to X-Forwarded-For, so its last entry is
    trusted. (Tornado's remote_ip prefers X-Real-Ip, which any client can set.)"""
    request = getattr(handler, "request", None)
    headers = getattr(request, "headers", None) or {}
    forwarded = headers.get("X-Forwarded-For", "")
    if forwarded.strip():
        return forwarded.split(",")[-1].strip()[:64]
    return (getattr(request, "remote_ip", None) or "unknown")[:64]


def default_db_url() -> str:
    return default_url()


class LensPasswordAuthenticator(FoldedUsernames):
    db_url = Unicode(config=True, help="SQLAlchemy URL of the lens database holding the accounts.")

    @default("db_url")
    def _default_db_url(self):
        return default_db_url()

    @default("username_pattern")
    def _default_username_pattern(self):
        return USERNAME_RE.pattern

    @default("allow_all")
    def _default_allow_all(self):
        # Every account in the store was made by an admin; that is the allow list.
        return True

    hash_threads = Integer(
        2,
        config=True,
        help="Threads that verify password hashes (scrypt is CPU-bound). They are kept apart from "
        "the event loop's default executor, which the hub also uses to resolve addresses for its "
        "own HTTP calls (proxy, server polls, the lens budget gate): a login storm must not starve those.",
    )

    failed_logins_per_user = Integer(
        5, config=True, help="Failed logins a user name may have before each further failure locks it "
        "for an exponentially growing window (throttle_base_seconds, doubling up to throttle_max_seconds).",
    )
    failed_logins_per_address = Integer(
        20, config=True, help="Failed logins (any user names) a client address may have before it is locked "
        "the same way. Higher than the per-user limit: a classroom often shares one NAT address.",
    )
    throttle_base_seconds = Float(5.0, config=True, help="First lock window after the limit is reached (seconds).")
    throttle_max_seconds = Float(900.0, config=True, help="Longest lock window (seconds).")
    throttle_max_keys = Integer(
        10_000, config=True, help="User names and addresses remembered per throttle (memory bound).",
    )

    _store: AccountStore | None = None
    _executor: ThreadPoolExecutor | None = None
    _throttles: tuple[LoginThrottle, LoginThrottle] | None = None

    @property
    def throttles(self) -> tuple[LoginThrottle, LoginThrottle]:
        """(per user name, per client address)"""
        if self._throttles is None:
            common = dict(base=self.throttle_base_seconds, cap=self.throttle_max_seconds,
                          max_keys=self.throttle_max_keys)
            self._throttles = (LoginThrottle(limit=self.failed_logins_per_user, **common),
                               LoginThrottle(limit=self.failed_logins_per_address, **common))
        return self._throttles

    @staticmethod
    def _refuse(status: int, message: str):
        error = web.HTTPError(status, message)
        error.jupyterhub_message = message  # shown on the hub's login/error page
        return error

    @property
    def executor(self) -> ThreadPoolExecutor:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(self.hash_threads, thread_name_prefix="lens-password")
        return self._executor

    @property
    def store(self) -> AccountStore:
        if self._store is None:
            self._store = AccountStore.from_url(self.db_url)
        return self._store

    async def authenticate(self, handler, data):
        username = fold_username((data or {}).get("username", ""))
        password = (data or {}).get("password", "")
        if not username or not password:
            return None
        username = username[:64]  # throttle keys stay small (longer names are refused anyway)
        by_user, by_address = self.throttles
        address = client_address(handler)
        wait = max(by_user.retry_after(username), by_address.retry_after(address))
        if wait:
            self.log.warning("Login of %s from %s refused: throttled for %d s", username, address, wait)
            raise self._refuse(429, f"Too many failed logins: try again in {wait} s.")
        loop = asyncio.get_running_loop()
        account, refusal = await loop.run_in_executor(self.executor, self.store.check, username, password)
        if refusal:
            raise self._refuse(403, refusal)
        if account is None:
            locked = max(by_user.failed(username), by_address.failed(address))
            self.log.warning("Failed login of %s from %s%s", username, address,
                             f"; locked for {locked} s" if locked else "")
            return None
        by_user.succeeded(username)
        return {"name": account.username, "admin": account.admin or None}

    async def refresh_user(self, user, handler=None):
        """End the session of an account that was disabled or expired since it logged in.

        The hub calls this at most every ``auth_refresh_age`` seconds per user (and
        before a spawn with ``refresh_pre_spawn``); False sends the user back to
        the login page, which then says why. Hub users without a lens account
        (created over the REST API, or by another authenticator) are left alone.
        """
        loop = asyncio.get_running_loop()
        account = await loop.run_in_executor(self.executor, self.store.get, user.name)
        if account is None:
            return True
        if account.disabled or account.expired():
            self.log.info("Ending %s's session: the account is %s", user.name,
                          "disabled" if account.disabled else "expired")
            return False
        return True
