"""Sharing's pure parts: request bodies, paths, who may share with a workshop, who is a guest."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from tornado import web

from jupyter_ext.cli.main import main
from jupyter_ext.clients.hub import share_path, share_target
from jupyter_ext.server.guests import is_guest
from jupyter_ext.server.share_handlers import json_object
from jupyter_ext.service.share_routes import has_share, revoke_body, server_url, share_rows
from jupyter_ext.service.share_routes import share_target as body_target
from jupyter_ext.workshop.model import Workshop
from jupyter_ext.workshop.sharing import share_refusal

NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)


def test_share_paths_keep_the_default_servers_trailing_slash_and_quote_names():
    assert share_path("alice") == "shares/alice/"
    assert share_path("alice", "gpu run") == "shares/alice/gpu%20run"
    assert share_path("a/b") == "shares/a%2Fb/"
    assert server_url("alice", "") == "/user/alice/" and server_url("alice", "x") == "/user/alice/x/"


def test_a_share_names_exactly_one_user_or_group():
    assert share_target("bob", None) == {"user": "bob"}
    assert share_target(None, "lab-a") == {"group": "lab-a"}
    for user, group in (("bob", "lab-a"), (None, None), ("", "")):
        with pytest.raises(ValueError):
            share_target(user, group)
    assert body_target({"user": " bob "}) == {"user": "bob"}
    assert body_target({"group": "lab-a"}) == {"group": "lab-a"}
    for body in ({}, {"user": "bob", "group": "g"}, {"user": 3}, {"user": ["bob"]}, {"group": "x" * 300}):
        with pytest.raises(web.HTTPError) as info:
            body_target(body)
        assert info.value.status_code == 400


@pytest.mark.parametrize("body", [
    {"user": "   "}, {"group": "\t"},  # blank once stripped: reached the hub client's ValueError (a 500)
    {"user": "x" * 256}, {"group": " " + "x" * 256 + " "},  # over 255 characters
    {"user": "bob\nFAKE log line"}, {"group": "lab\x00a"}, {"user": "bob\x7f"},
    {"user": True}, {"user": {"name": "bob"}}, {"group": 0.5}, {"user": None, "group": None},
])
def test_a_share_body_with_a_bad_name_is_a_400(body):
    with pytest.raises(web.HTTPError) as info:
        body_target(body)
    assert info.value.status_code == 400


def test_share_names_may_be_any_printable_text_the_hub_then_judges():
    for name in ("bob", "Bob.Smith@uni.example", "a/b", "..", "ünïcødé", "x" * 255):
        assert body_target({"user": name}) == {"user": name}


def test_a_revoke_is_every_share_or_exactly_one_target():
    assert revoke_body({"all": True}) == {"all": True}
    assert revoke_body({"user": "bob"}) == {"user": "bob"}
    assert revoke_body({"group": " lab-a "}) == {"group": "lab-a"}
    for body in ({"all": "yes"}, {"all": 1}, {"all": False}, {"all": None}, {"all": True, "user": "bob"},
                 {"all": True, "group": "g"}, {}, {"user": " "}):
        with pytest.raises(web.HTTPError) as info:
            revoke_body(body)
        assert info.value.status_code == 400, body


def test_share_rows_name_users_and_groups():
    items = [{"kind": "user", "user": {"name": "bob"}, "group": None, "created_at": "2026-12-04T11:00:00Z"},
             {"kind": "group", "user": None, "group": {"name": "lab-a"}, "created_at": None}]
    assert share_rows(items) == [{"kind": "user", "name": "bob", "created_at": "2026-12-04T11:00:00Z"},
                                 {"kind": "group", "name": "lab-a", "created_at": None}]


def test_a_revoke_names_a_share_that_is_there():
    items = [{"kind": "user", "user": {"name": "bob"}, "group": None},
             {"kind": "group", "user": None, "group": {"name": "lab-a"}}]
    assert has_share(items, "user", "bob") and has_share(items, "group", "lab-a")
    assert not has_share(items, "group", "bob") and not has_share(items, "user", "lab-a")
    assert not has_share(items, "user", "bobb") and not has_share([], "user", "bob")


def workshop(**kw) -> Workshop:
    return Workshop(name="ws", expires_at=NOW + timedelta(days=1), profiles=("lab",), instructors=("teach",),
                    seats=("ws-01",), **kw)


def test_only_a_workshops_instructor_shares_with_its_seats_while_it_is_open():
    assert share_refusal(workshop(), "ws", "teach", now=NOW) is None
    assert "no workshop 'ws'" in share_refusal(None, "ws", "teach", now=NOW)
    assert "'ws-01' is not an instructor" in share_refusal(workshop(), "ws", "ws-01", now=NOW)
    closed = workshop(closed_at=NOW - timedelta(hours=1))
    assert "is closed" in share_refusal(closed, "ws", "teach", now=NOW)
    assert share_refusal(closed, "ws", "teach", revoke=True, now=NOW) is None  # taking back: always


def test_guests_are_everyone_but_the_owner():
    assert is_guest({"name": "bob"}, "alice")
    assert not is_guest({"name": "alice"}, "alice")
    assert not is_guest(None, "alice")


def test_share_cli_says_what_is_missing(capsys, monkeypatch):
    monkeypatch.delenv("JUPYTERHUB_API_TOKEN", raising=False)
    assert main(["share", "revoke"]) == 2
    assert "give --user NAME, --group NAME or --all" in capsys.readouterr().err
    assert main(["share", "add", "--user", "bob"]) == 2
    assert "no hub token" in capsys.readouterr().err


@pytest.fixture
def share_cli(monkeypatch):
    """`lens share ...` with a token in the environment and no lens server around it."""
    monkeypatch.setenv("JUPYTERHUB_API_TOKEN", "tok")
    monkeypatch.delenv("LENS_SERVICE_URL", raising=False)


@pytest.mark.parametrize("args, says", [
    (["add", "--user", ""], "--user: give a name"),
    (["add", "--group", "   "], "--group: give a name"),
    (["add", "--user", "bob\nroot"], "control characters"),
    (["add", "--user", "x" * 256], "1 to 255 characters"),
    (["revoke", "--user", ""], "--user: give a name"),
    (["revoke", "--all", "--user", "bob"], "give --user NAME, --group NAME or --all"),
    (["add", "--user", "bob", "--server", "."], "--server .: no such name"),  # was the default server
    (["list", "--server", ".."], "--server ..: no such name"),
    (["list", "--owner", ".."], "--owner ..: no such name"),
])
def test_share_cli_refuses_bad_names_before_calling_anyone(capsys, monkeypatch, args, says):
    monkeypatch.delenv("JUPYTERHUB_API_TOKEN", raising=False)  # refused before the token is asked for
    assert main(["share", "--hub-url", "http://127.0.0.1:9", *args]) == 2
    err = capsys.readouterr().err
    assert says in err and "Traceback" not in err, err


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("hub_url", ["http://127.0.0.1:{port}", "ftp://127.0.0.1:{port}", "not a url"])
def test_share_cli_says_the_hub_is_unreachable(capsys, share_cli, hub_url):
    for action in (["list"], ["with-me"], ["add", "--user", "bob"]):
        assert main(["share", "--hub-url", hub_url.format(port=free_port()), *action]) == 2
        err = capsys.readouterr().err
        assert "unreachable" in err and "--hub-url" in err, err


def test_share_cli_explains_answers_that_are_not_the_lens_services(capsys, share_cli):
    from tests.clients.peer import Peer

    with Peer() as peer:
        hub = peer.url.rstrip("/")
        me = ("GET", "/base/services/lens/api/me")
        # the hub's HTML error page (the lens service is down: the proxy shows the hub's 503 page)
        peer.script[me] = [(503, b"<!DOCTYPE html><html><body><h1>503 Service Unavailable</h1></body></html>")]
        assert main(["share", "--hub-url", hub, "list"]) == 2
        err = capsys.readouterr().err
        assert "web page" in err and "lens service running" in err and "<html" not in err, err
        # some other JSON server at that address: no traceback on the missing fields
        peer.script[me] = [(200, ["not", "a", "user"])]
        assert main(["share", "--hub-url", hub, "list"]) == 2
        assert "not the lens service's" in capsys.readouterr().err
        peer.script[me] = [(200, {"name": "alice"})]  # the rest echoes {"path", "method"}: no "url"
        for action in (["list"], ["add", "--user", "bob"], ["revoke", "--all"], ["with-me"]):
            assert main(["share", "--hub-url", hub, *action]) == 2, action
            assert "not the lens service's" in capsys.readouterr().err
        # a token the hub does not take
        peer.script[me] = [(403, {"status": 403, "message": "Authentication required: send a hub token"})]
        assert main(["share", "--hub-url", hub, "list"]) == 2
        assert "the hub refused the token: Authentication required" in capsys.readouterr().err


def test_the_servers_sharing_tab_takes_only_a_json_object():
    assert json_object(b"") == {} and json_object(None) == {}
    assert json_object(b'{"user": "bob"}') == {"user": "bob"}
    for body in (b"{user", b"[1]", b'"bob"', b"null", b"[" * 100_000, b"\xff"):  # the list used to go on
        with pytest.raises(web.HTTPError) as info:
            json_object(body)
        assert info.value.status_code == 400
