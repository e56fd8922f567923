"""Browser login to the lens service through the hub's OAuth (with PKCE).

JupyterHub 6 keeps each pending OAuth login's state (the page to go back to and
the PKCE ``code_verifier``) in memory, in the ``HubOAuth`` object that made the
login redirect. The callback must finish the login with that same object: the
stock ``HubOAuthCallbackHandler`` uses the ``HubOAuth.instance()`` singleton,
which never saw the state, so the hub refused the code ("Code verifier
required"). As in JupyterHub's own single-user extension, the callback here uses
the application's ``HubOAuth`` (``settings["hub_auth"]``).
"""

from __future__ import annotations

from urllib.parse import urlsplit

from jupyterhub.services.auth import HubOAuth, HubOAuthCallbackHandler


def is_local_path(url: str | None) -> bool:
    """True for a path on this host ("/services/lens/admin?x=1"); False for anything a
    browser could take off-site: "https://evil.example/", "//evil.example/",
    "/\\evil.example", "javascript:..." or an empty value."""
    if not url or not url.startswith("/") or url.startswith("//") or "\\" in url:
        return False
    if any(ord(ch) < 0x20 or ch == "\x7f" for ch in url):
        return False  # browsers drop tabs/newlines: "/\t/evil.example" becomes "//evil.example"
    parts = urlsplit(url)
    return not parts.scheme and not parts.netloc


class LensHubOAuth(HubOAuth):
    """``HubOAuth`` whose post-login redirect never leaves the site."""

    def get_next_url(self, state_id="", /):
        url = super().get_next_url(state_id)
        return url if is_local_path(url) else self.base_url


class LensOAuthCallbackHandler(HubOAuthCallbackHandler):
    """``SERVICE_PREFIX/oauth_callback``, finishing logins with the service's ``HubOAuth``."""

    @property
    def hub_auth(self):
        return self.settings["hub_auth"]
