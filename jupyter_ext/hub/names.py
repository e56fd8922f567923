"""The hub-name rules both lens authenticators share (password and OIDC logins)."""

from __future__ import annotations

import re

from jupyterhub.auth import Authenticator
from traitlets import default

from jupyter_ext.usernames import fold_username


class FoldedUsernames(Authenticator):
    """Names folded (NFKC + casefold, jupyter_ext.usernames) and held to ``username_pattern``.

    JupyterHub compiles username_pattern into username_regex in an @observe, and
    traitlets never fires observers for @default values: without the default below a
    subclass's pattern default was ignored and the hub's REST API created any name
    ("ALICE" next to "alice", fullwidth "ａｌｉｃｅ", "alıce"). Names outside the
    pattern are refused, so no two hub names differ only by case or by Unicode
    confusables (tests/security/test_usernames.py)."""

    @default("username_regex")
    def _default_username_regex(self):
        return re.compile(self.username_pattern) if self.username_pattern else None

    def normalize_username(self, username):
        username = fold_username(username)
        return self.username_map.get(username, username)
