"""The shared client rules, against a real HTTP server (tests/clients/peer.py)."""

from __future__ import annotations

import socket
import time

import pytest

from jupyter_ext.clients.base import PeerClient, PeerError, Sync, path, should_retry
from jupyter_ext.clients.hub import HubClient
from jupyter_ext.clients.lens import LensClient
from tests.clients.peer import Peer

FAIL = (503, {"status": 503, "message": "database is restarting"})


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_get_is_retried_after_5xx_and_succeeds():
    with Peer() as peer:
        peer.script[("GET", "/base/api/thing")] = [FAIL, FAIL, (200, {"ok": 1})]
        client = PeerClient(peer.url, "tok", attempts=3, backoff=0.01)
        assert await client.request("GET", "api/thing") == {"ok": 1}
        calls = peer.calls_to("GET", "/base/api/thing")
        assert len(calls) == 3
        assert all(c["headers"]["Authorization"] == "token tok" for c in calls)


async def test_post_without_key_is_not_retried_and_error_carries_the_peers_message():
    with Peer() as peer:
        peer.script[("POST", "/base/api/hold")] = [FAIL, (200, {"ok": 1})]
        client = PeerClient(peer.url, attempts=3, backoff=0.01)
        with pytest.raises(PeerError) as err:
            await client.request("POST", "api/hold", {"rate": 1})
        assert err.value.status == 503 and err.value.message == "database is restarting"
        assert err.value.transient and not err.value.unreachable
        assert len(peer.calls_to("POST", "/base/api/hold")) == 1


async def test_post_with_an_idempotency_key_is_retried_with_the_key():
    with Peer() as peer:
        peer.script[("POST", "/base/api/meter")] = [FAIL, (201, {"recorded": True})]
        client = PeerClient(peer.url, attempts=3, backoff=0.01)
        assert await client.request("POST", "api/meter", {"e": 1}, idempotency_key="k-1") == {"recorded": True}
        calls = peer.calls_to("POST", "/base/api/meter")
        assert [c["headers"].get("Idempotency-Key") for c in calls] == ["k-1", "k-1"]
        assert calls[0]["body"] == {"e": 1}


async def test_4xx_is_not_retried_and_keeps_the_status_and_message():
    with Peer() as peer:
        peer.script[("GET", "/base/api/budget")] = [(403, {"status": 403, "message": "budget used up"})]
        client = PeerClient(peer.url, attempts=3, backoff=0.01)
        with pytest.raises(PeerError) as err:
            await client.request("GET", "api/budget")
        assert (err.value.status, err.value.message) == (403, "budget used up")
        assert not err.value.transient
        assert "budget used up" in str(err.value) and "403" in str(err.value)
        assert len(peer.calls_to("GET", "/base/api/budget")) == 1


async def test_retries_stop_after_the_attempts():
    with Peer() as peer:
        peer.script[("DELETE", "/base/x")] = [FAIL]
        with pytest.raises(PeerError) as err:
            await PeerClient(peer.url, attempts=2, backoff=0.01).request("DELETE", "x")
        assert err.value.status == 503
        assert len(peer.calls_to("DELETE", "/base/x")) == 2


async def test_timeout_is_an_error_within_the_time_and_not_retried():
    with Peer() as peer:
        peer.delay = 3.0
        client = PeerClient(peer.url, attempts=3, timeout=0.5)
        t0 = time.monotonic()
        with pytest.raises(PeerError) as err:
            await client.request("GET", "slow")
        assert time.monotonic() - t0 < 2.5
        assert err.value.timed_out and err.value.status == 504 and err.value.transient
        assert len(peer.calls_to("GET", "/base/slow")) == 1


async def test_unreachable_peer_is_a_503_peer_error():
    client = LensClient(f"http://127.0.0.1:{free_port()}/services/lens/", attempts=2, backoff=0.01)
    with pytest.raises(PeerError) as err:
        await client.me()
    assert err.value.unreachable and err.value.status == 503 and err.value.peer == "lens service"
    with pytest.raises(PeerError, match="LENS_SERVICE_URL is not set"):
        await LensClient("").me()


@pytest.mark.parametrize("base", ["ftp://hub/services/lens/", "hub:8000/services/lens/", "not a url"])
async def test_a_url_no_request_can_be_made_to_is_a_peer_error(base):
    with pytest.raises(PeerError) as err:  # tornado's ValueError was a traceback in `lens share`
        await LensClient(base, "tok", attempts=3, backoff=0.01).me()
    assert err.value.unreachable and err.value.status == 503 and "unreachable" in err.value.message


def test_path_parts_are_quoted():
    assert path("users", "a/b?c", "servers", "x y") == "users/a%2Fb%3Fc/servers/x%20y"
    assert path("api", "check", params={"user": "a&b", "rate": None}) == "api/check?user=a%26b"


async def test_a_name_with_slash_and_question_mark_stays_one_path_part():
    with Peer() as peer:
        hub = HubClient(peer.url.rstrip("/"), "t")
        got = await hub.get_user("we?ird/name")
        assert got["path"] == "/base/users/we%3Fird%2Fname"
        peer.script[("GET", "/base/users/ghost")] = [(404, {"message": "no such user"})]
        assert await hub.get_user("ghost") is None
        assert await hub.stop_server("a/b", "srv?1") in (200,)
        assert peer.calls[-1]["path"] == "/base/users/a%2Fb/servers/srv%3F1"


def test_sync_wrapper_runs_the_same_client():
    with Peer() as peer:
        peer.script[("GET", "/base/users/ann")] = [FAIL, (200, {"name": "ann"})]
        hub = Sync(HubClient(peer.url, "t", backoff=0.01))
        try:
            assert hub.get_user("ann") == {"name": "ann"}
            assert hub.get_user("ann") == {"name": "ann"}  # the loop is reused
        finally:
            hub.close()
        assert len(peer.calls_to("GET", "/base/users/ann")) == 3


def test_should_retry_rules():
    assert should_retry("GET", None, 502, 1, 3)
    assert should_retry("PUT", None, None, 1, 3)
    assert not should_retry("POST", None, 503, 1, 3)
    assert should_retry("POST", "key", 503, 1, 3)
    assert not should_retry("GET", None, 503, 3, 3)
    assert should_retry("GET", None, 500, 1, 3)
    assert not should_retry("GET", None, 501, 1, 3)  # not implemented: asking again will not help
    assert not should_retry("GET", None, 404, 1, 3)


def test_error_text_names_the_peer_and_the_call():
    err = PeerError("hub", 403, "the token needs admin:users")
    assert str(err) == "hub answered HTTP 403: the token needs admin:users"
    err = PeerError("hub", 404, "no such group", method="GET", url="http://h/hub/api/groups/x")
    assert str(err) == "hub answered HTTP 404 to GET http://h/hub/api/groups/x: no such group"
    assert not err.transient and PeerError("hub", 502, "bad gateway").transient
