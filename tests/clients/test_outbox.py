"""The durable outbox against a real HTTP server that fails, then recovers."""

from __future__ import annotations

import pytest

from jupyter_ext.clients.lens import LensClient
from jupyter_ext.clients.outbox import Outbox
from tests.clients.peer import Peer

DOWN = (503, {"message": "restarting"})


async def test_kept_while_the_peer_fails_then_delivered_in_order_once(tmp_path):
    box = Outbox(tmp_path / "state" / "outbox.sqlite")
    with Peer() as peer:
        client = LensClient(peer.url, "t", attempts=1)
        peer.script[("POST", "/base/api/meter/servers")] = [DOWN]
        assert not await box.send(client, "POST", "api/meter/servers", {"event": "start"}, "meter:s1:start",
                                  group="meter:s1:")
        # the same server's next event queues behind the first (order holds), and is not sent yet
        assert not await box.send(client, "POST", "api/meter/servers", {"event": "stop"}, "meter:s1:stop",
                                  group="meter:s1:")
        assert [e.key for e in box.pending()] == ["meter:s1:start", "meter:s1:stop"]
        assert box.pending()[0].attempts == 2 and "restarting" in box.pending()[0].last_error
        assert [c["body"] for c in peer.calls_to("POST", "/base/api/meter/servers")] == [{"event": "start"}] * 2
        # a call of another group does not wait behind them
        assert await box.send(client, "POST", "api/archives", {"archive_id": "a1"}, "archive:a1")
        # the same call again (a retried put) is not a second entry
        assert not box.put("POST", "api/meter/servers", {"event": "start"}, "meter:s1:start")

        # a fresh Outbox on the same file (a restarted server) finds them and delivers
        peer.script[("POST", "/base/api/meter/servers")] = [(201, {})]
        again = Outbox(box.path)
        assert await again.flush(client) == 2
        assert again.pending() == []
        delivered = [c for c in peer.calls if c["headers"].get("Idempotency-Key")]
        assert [c["headers"]["Idempotency-Key"] for c in delivered][-2:] == ["meter:s1:start", "meter:s1:stop"]
        assert await again.flush(client) == 0  # nothing twice


async def test_calls_of_different_groups_are_delivered_side_by_side(tmp_path):
    """A burst (a class starting its servers) is not delivered one call at a time."""
    import asyncio

    box = Outbox(tmp_path / "outbox.sqlite")
    with Peer() as peer:
        peer.delay = 1.0
        client = LensClient(peer.url, "t", attempts=1, timeout=30)
        sent = await asyncio.gather(*(box.send(client, "POST", "api/slow", {"n": n}, f"meter:s{n}:start",
                                               group=f"meter:s{n}:") for n in range(6)))
        assert all(sent) and box.pending() == []
        arrivals = sorted(c["at"] for c in peer.calls_to("POST", "/base/api/slow"))
        # every call reached the peer before the first answer could have come back
        assert len(arrivals) == 6 and arrivals[-1] - arrivals[0] < peer.delay


async def test_a_refused_call_is_dropped_not_retried_forever(tmp_path):
    box = Outbox(tmp_path / "outbox.sqlite")
    with Peer() as peer:
        peer.script[("POST", "/base/api/archives")] = [(400, {"message": "Bad archive record"})]
        client = LensClient(peer.url, "t", attempts=1)
        assert await box.send(client, "POST", "api/archives", {"x": 1}, "bad")
        assert box.pending() == []


def test_send_sync_from_a_thread_without_a_loop(tmp_path):
    box = Outbox(tmp_path / "outbox.sqlite")
    with Peer() as peer:
        assert box.send_sync(LensClient(peer.url, "t"), "POST", "api/archives", {"a": 1}, "k")
        assert peer.calls_to("POST", "/base/api/archives")[0]["body"] == {"a": 1}
    assert (tmp_path / "outbox.sqlite").stat().st_mode & 0o777 == 0o600


@pytest.mark.parametrize("status", [500, 502, 504])
async def test_server_errors_are_transient(tmp_path, status):
    box = Outbox(tmp_path / "o.sqlite")
    with Peer() as peer:
        peer.script[("POST", "/base/api/meter/servers")] = [(status, {"message": "oops"})]
        assert not await box.send(LensClient(peer.url, "t", attempts=1), "POST", "api/meter/servers", {}, "k")
        assert len(box.pending()) == 1


def test_service_idempotency_keys_are_claimed_once_and_pruned(tmp_path):
    from datetime import UTC, datetime, timedelta

    import sqlalchemy as sa

    from jupyter_ext.db.migrate import ensure_schema
    from jupyter_ext.service.db import (
        claim_key,
        finish_key,
        idempotency_keys,
        make_engine,
        prune_keys,
        release_key,
    )

    engine = make_engine(f"sqlite:///{tmp_path / 'lens.sqlite'}")
    ensure_schema(engine)
    assert claim_key(engine, "k", "lens-gate") == "new"
    # a replay while the first call is still being applied must come back later
    assert claim_key(engine, "k", "lens-gate") == "pending"
    finish_key(engine, "k", "lens-gate")
    assert claim_key(engine, "k", "lens-gate") == "done"  # a replay of an applied call
    assert claim_key(engine, "k", "other-service") == "new"  # keys are per caller
    release_key(engine, "k", "other-service")  # its call failed: a retry applies it
    assert claim_key(engine, "k", "other-service") == "new"
    with engine.begin() as conn:
        conn.execute(idempotency_keys.update().where(idempotency_keys.c.caller == "other-service")
                     .values(created=datetime.now(UTC).replace(tzinfo=None) - timedelta(days=31)))
    assert prune_keys(engine) == 1
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(idempotency_keys)).scalar() == 1
