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
        peer.script[("POST", "/base/api/archives")] = [DOWN]
        assert not await box.send(client, "POST", "api/archives", {"archive_id": "a1"}, "archive:a1")
        # a second event queues behind the first (order holds), and is not sent yet
        assert not await box.send(client, "POST", "api/meter/servers", {"event": "stop"}, "stop:1")
        assert [e.key for e in box.pending()] == ["archive:a1", "stop:1"]
        assert box.pending()[0].attempts == 2 and "restarting" in box.pending()[0].last_error
        assert peer.calls_to("POST", "/base/api/meter/servers") == []
        # the same call again (a retried put) is not a second entry
        assert not box.put("POST", "api/archives", {"archive_id": "a1"}, "archive:a1")

        # a fresh Outbox on the same file (a restarted server) finds them and delivers
        peer.script[("POST", "/base/api/archives")] = [(201, {"registered": "a1"})]
        again = Outbox(box.path)
        assert await again.flush(client) == 2
        assert again.pending() == []
        delivered = [c for c in peer.calls if c["headers"].get("Idempotency-Key")]
        assert [c["headers"]["Idempotency-Key"] for c in delivered][-2:] == ["archive:a1", "stop:1"]
        assert await again.flush(client) == 0  # nothing twice


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

    from jupyter_ext.service.db import (
        claim_key,
        idempotency_keys,
        make_engine,
        metadata,
        prune_keys,
        release_key,
    )

    engine = make_engine(f"sqlite:///{tmp_path / 'lens.sqlite'}")
    metadata.create_all(engine)
    assert claim_key(engine, "k", "lens-gate")
    assert not claim_key(engine, "k", "lens-gate")  # a replay
    assert claim_key(engine, "k", "other-service")  # keys are per caller
    release_key(engine, "k", "lens-gate")  # its call failed: a retry applies it
    assert claim_key(engine, "k", "lens-gate")
    with engine.begin() as conn:
        conn.execute(idempotency_keys.update().where(idempotency_keys.c.caller == "other-service")
                     .values(created=datetime.now(UTC).replace(tzinfo=None) - timedelta(days=31)))
    assert prune_keys(engine) == 1
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(idempotency_keys)).scalar() == 1
