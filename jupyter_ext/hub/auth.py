"""LensPasswordAuthenticator: admin-created local accounts with hashed passwords.

Accounts are made by an admin (`lens users add NAME`, or `lens workshop
create`); there is no self-signup. Expired or disabled accounts are refused
with a message that says so.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

from jupyterhub.auth import Authenticator
from tornado import web
from traitlets import Integer, Unicode, default

from jupyter_ext.accounts import USERNAME_RE, AccountStore
from jupyter_ext.db.engine import default_url


def default_db_url() -> str:
    return default_url()


class LensPasswordAuthenticator(Authenticator):
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

    _store: AccountStore | None = None
    _executor: ThreadPoolExecutor | None = None

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
        username = (data or {}).get("username", "").strip().lower()
        password = (data or {}).get("password", "")
        if not username or not password:
            return None
        loop = asyncio.get_running_loop()
        account, refusal = await loop.run_in_executor(self.executor, self.store.check, username, password)
        if refusal:
            error = web.HTTPError(403, refusal)
            error.jupyterhub_message = refusal  # shown on the hub's error page
            raise error
        if account is None:
            return None
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
