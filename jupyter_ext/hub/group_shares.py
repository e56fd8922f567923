"""A server shared with a group reaches the members' tokens, not only their cookies.

JupyterHub 6.1's ``scopes.get_scopes_for(APIToken)`` lets a token hold what its owner's
roles and *user* shares grant, but not what their groups' shares grant (the cookie path,
for a User, has both). Every request to a single-user server is a token (the OAuth token
of the server's client, or an API token), so a group member was refused the server shared
with their group: 403. lens adds the groups' shares to what a token may hold, exactly as
upstream adds user shares (see ``jupyter_ext.upstream``: ``jupyterhub.group-share-tokens``).
"""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)


def group_share_scopes(user) -> frozenset:
    """The expanded scopes the shares with USER's groups grant (an orm.User)."""
    from jupyterhub import scopes

    granted: set = set()
    for group in user.groups:
        for share in group.shared_with_me:
            granted |= scopes.expand_share_scopes(share)
    return frozenset(granted)


def with_group_shares(get_scopes_for):
    """Wrap upstream's get_scopes_for: a user's token also holds, of what it asks for, what
    their groups' shares grant."""
    import sqlalchemy as sa
    from jupyterhub import orm, scopes

    def get_scopes_for_with_group_shares(orm_object):
        granted = get_scopes_for(orm_object)
        user = orm_object.user if isinstance(orm_object, orm.APIToken) else None
        if user is None:
            return granted
        shared = group_share_scopes(user)
        if not shared:
            return granted
        asked = set(orm_object.scopes)
        if "inherit" in asked:
            return frozenset(granted) | shared
        wanted = scopes.expand_scopes(asked, owner=user, oauth_client=orm_object.oauth_client)
        return frozenset(granted) | scopes._intersect_expanded_scopes(
            frozenset(wanted), shared, db=sa.inspect(orm_object).session)

    get_scopes_for_with_group_shares.lens_group_shares = True
    get_scopes_for_with_group_shares.__wrapped__ = get_scopes_for  # upstream's, for tests
    return get_scopes_for_with_group_shares


def install() -> bool:
    """Patch the hub's get_scopes_for (both names it is called by); False when skipped."""
    from jupyterhub import scopes
    from jupyterhub.apihandlers import base as api_base

    from jupyter_ext.upstream import check

    if not check("jupyterhub.group-share-tokens", log):
        return False
    if getattr(scopes.get_scopes_for, "lens_group_shares", False):
        return True
    patched = with_group_shares(scopes.get_scopes_for)
    scopes.get_scopes_for = patched
    api_base.get_scopes_for = patched
    return True
