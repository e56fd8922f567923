# Config of jupyterhub-idle-culler (a hub-managed service): each server's idle
# timeout comes from its profile in the catalog; --timeout is the default.
import os

from spawners.profiles import load_catalog

c = get_config()  # noqa: F821
_catalog = load_catalog(os.environ["LENS_PROFILES"])
_timeouts = {p.slug: p.idle_timeout for p in _catalog.profiles}


def cull_by_profile(*, inactive, inactive_limit, server, **kwargs):
    slug = (server.get("user_options") or {}).get("profile") or _catalog.default_profile.slug
    limit = _timeouts.get(slug, inactive_limit)
    if limit == 0:  # 0: never culled
        return False
    return inactive.total_seconds() >= limit


c.IdleCuller.cull_arbiter_hook = cull_by_profile
