# Config of jupyterhub-idle-culler (a hub-managed service): each server's idle
# timeout comes from its profile in the catalog; --timeout is the default.
import os
from urllib.parse import unquote

from jupyter_ext.workshop.prewarm import held
from spawners.profiles import load_catalog

c = get_config()  # noqa: F821
_catalog = load_catalog(os.environ["LENS_PROFILES"])
_timeouts = {p.slug: p.idle_timeout for p in _catalog.profiles}


def server_owner(server) -> str:
    """The user in the server's URL (…/user/NAME/[SERVER/]); the hook is not given the user."""
    url = (server.get("url") or "").split("/user/", 1)
    return unquote(url[1].split("/", 1)[0]) if len(url) == 2 else ""


def cull_by_profile(*, inactive, inactive_limit, server, **kwargs):
    if held(server_owner(server)):  # prewarmed for a class that has not started yet
        return False
    slug = (server.get("user_options") or {}).get("profile") or _catalog.default_profile.slug
    limit = _timeouts.get(slug, inactive_limit)
    if limit == 0:  # 0: never culled
        return False
    return inactive.total_seconds() >= limit


c.IdleCuller.cull_arbiter_hook = cull_by_profile
