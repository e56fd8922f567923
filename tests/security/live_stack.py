"""A real lens stack for the security tests, and unix-account clean-up.

The modules share one stack (``conftest.stack``, package scope: a start is ~10 s
of the suite); each creates users of its own names. A module that needs a config
of its own (OIDC, the browser stack) starts its own for its tests.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

from tests.conftest import require
from tests.support import unix
from tests.support.hub import PROXY_MISSING, make_stack, proxy_installed


@contextmanager
def running_stack(extra_env: dict | None = None, users: tuple[str, ...] = (), admin_login: bool = True,
                  callback: str = "", every_user: bool = False):
    """Start `lens hub run` on free ports; on exit stop it and (as root) remove the
    unix accounts ``jupyter-NAME`` of USERS that the spawner created (EVERY_USER:
    of every user the hub has then). CALLBACK, for OIDC stacks: the hub path the
    identity provider sends browsers back to."""
    require(proxy_installed(), PROXY_MISSING)
    # Not under pytest's 0700 temp dir: servers run as the users' own accounts.
    root = Path(tempfile.mkdtemp(prefix="lens-sec-"))
    root.chmod(0o711)
    hub = make_stack(root / "state", extra_env)
    if callback:
        hub.env["LENS_OIDC_OAUTH_CALLBACK_URL"] = hub.url + callback
    try:
        hub.start(admin_login=admin_login)
        yield hub
    finally:
        if every_user and hub.admin_token:
            try:
                users = (*users, *(u["name"] for u in hub.api("GET", "/users").json()))
            except Exception:  # noqa: BLE001 - a stack that died: its users are unknown
                pass
        hub.stop()
        if os.geteuid() == 0:
            for name in users:
                unix.remove_account(f"jupyter-{name}")
        shutil.rmtree(root, ignore_errors=True)
