"""jupyter_ext.hub.group_shares: a server shared with a group opens for the members'
tokens (JupyterHub 6.1's get_scopes_for gives a token only its owner's *user* shares),
checked on JupyterHub's own ORM and scope code."""

from __future__ import annotations

import pytest
from jupyterhub import orm, scopes

from jupyter_ext.hub.group_shares import with_group_shares

ACCESS = "access:servers!server=teacher/"
# Upstream's own, even when a test before this one loaded the hub config (which patches it).
upstream_get_scopes_for = getattr(scopes.get_scopes_for, "__wrapped__", scopes.get_scopes_for)


@pytest.fixture
def hub_db():
    db = orm.new_session_factory("sqlite:///:memory:")()
    users = {name: orm.User(name=name) for name in ("teacher", "seat", "outsider")}
    group = orm.Group(name="class")
    group.users.append(users["seat"])
    client = orm.OAuthClient(identifier="jupyterhub-user-teacher", description="teacher",
                             redirect_uri="/user/teacher/oauth_callback")
    db.add_all([*users.values(), group, client, orm.OAuthClient(identifier="jupyterhub")])
    spawner = orm.Spawner(user=users["teacher"], name="")
    spawner.oauth_client = client
    db.add(spawner)
    db.commit()
    yield db, users, group, spawner, client
    db.close()


def token(db, user, scope_list, client_id="jupyterhub"):
    orm.APIToken.new(user=user, scopes=scope_list, client_id=client_id)
    return db.query(orm.APIToken).filter_by(user_id=user.id).order_by(orm.APIToken.id.desc()).first()


def test_upstream_still_leaves_group_shares_out_of_tokens(hub_db):
    """When this fails, JupyterHub gives tokens their groups' shares: drop the patch."""
    db, users, group, spawner, client = hub_db
    orm.Share.grant(db, spawner, group)
    db.commit()
    assert ACCESS in upstream_get_scopes_for(users["seat"])  # the user (cookie) path has it
    assert ACCESS not in upstream_get_scopes_for(token(db, users["seat"], ["inherit"]))


def test_members_tokens_open_a_server_shared_with_their_group(hub_db):
    db, users, group, spawner, client = hub_db
    get = with_group_shares(upstream_get_scopes_for)
    orm.Share.grant(db, spawner, group, scopes=["access:servers", "read:servers"])
    db.commit()
    api = token(db, users["seat"], ["inherit"])
    oauth = token(db, users["seat"], [ACCESS], client_id=client.identifier)  # what the server checks
    assert ACCESS in get(api) and ACCESS in get(oauth)
    # Only what the token asked for: a token for something else gains no access.
    narrow = token(db, users["seat"], ["read:servers!server=teacher/"])
    assert "read:servers!server=teacher/" in get(narrow) and ACCESS not in get(narrow)
    # Nobody outside the group, and nothing once the share is revoked.
    assert ACCESS not in get(token(db, users["outsider"], ["inherit"]))
    orm.Share.revoke(db, spawner, group)
    db.commit()
    assert ACCESS not in get(api) and ACCESS not in get(oauth)
