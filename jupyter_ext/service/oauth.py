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
from jupyterhub.utils import get_browser_protocol
from traitlets import Unicode


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
    """``HubOAuth`` whose post-login redirect never leaves the site, and whose login
    also reaches the Dask dashboards the service fronts (``dashboard_routes``).

    The service's own cookie stays on its prefix (``/services/lens/``). When
    ``dashboard_cookie_path`` is set, the same OAuth token is also set in a second
    cookie on that path only (``/services/dask-gateway/clusters/``), which the
    dashboard hop reads and never forwards. Widening the service's own cookie to
    ``/services/`` instead would also hand it to the gateway's API and, where no
    hop fronts them (Kubernetes), to the schedulers, which run users' code.
    """

    dashboard_cookie_path = Unicode(
        "",
        config=True,
        help="Path of the Dask dashboards' login cookie ('' when this service fronts no dashboards).",
    )

    @property
    def dashboard_cookie_name(self) -> str:
        return f"{self.cookie_name}-dask-dashboards"

    def set_cookie(self, handler, access_token):
        super().set_cookie(handler, access_token)
        if self.dashboard_cookie_path:
            options = {"httponly": True, **self.cookie_options, "path": self.dashboard_cookie_path}
            if get_browser_protocol(handler.request) == "https":
                options["secure"] = True
            handler.set_secure_cookie(self.dashboard_cookie_name, access_token, **options)

    def dashboard_token(self, handler) -> str | None:
        """The OAuth token of the dashboard cookie (websockets included: the hop checks
        their Origin, and serves nothing but the cookie holder's own clusters)."""
        token = handler.get_secure_cookie(self.dashboard_cookie_name)
        return token.decode("ascii", "replace") if token else None

    def get_next_url(self, state_id="", /):
        url = super().get_next_url(state_id)
        return url if is_local_path(url) else self.base_url


class LensOAuthCallbackHandler(HubOAuthCallbackHandler):
    """``SERVICE_PREFIX/oauth_callback``, finishing logins with the service's ``HubOAuth``."""

    @property
    def hub_auth(self):
        return self.settings["hub_auth"]
