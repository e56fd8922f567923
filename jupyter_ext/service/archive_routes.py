"""The archive catalog: archives users made, per owner, metered as storage."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import sqlalchemy as sa
from tornado import web

from ..constants import DEFAULT_PACK_SIZE, STORAGE, STORAGE_CLASSES
from ..costs import db as cost_db
from ..costs.meter import min_storage_seconds, storage_rate
from ..db.tables import archives
from .base import LensHandler


def stored_objects(entry: dict) -> int:
    """Objects an archive added: the packs its server reports it wrote, else its added
    bytes over the pack size its server is configured with (default: the default)."""
    if entry.get("objects"):
        return int(entry["objects"])
    added = int(entry.get("added_bytes") or 0)
    pack_size = int(entry.get("pack_size") or DEFAULT_PACK_SIZE)
    return max(1, -(-added // pack_size)) if added else 0


def start_storage_metering(meter, catalog, user: str, accounts, entry: dict) -> int | None:
    """Meter the storage an archive added (dedup makes the rest free) from now on, at the
    catalog's price for its class, with the class's minimum storage duration."""
    added = int(entry.get("added_bytes") or 0)
    if not added:
        return None
    rate, _, _ = storage_rate(catalog, entry["storage_class"], added, stored_objects(entry))
    return meter.start(
        f"archive:{user}/{entry['archive_id']}", STORAGE, accounts, rate,
        min_seconds=min_storage_seconds(catalog, entry["storage_class"]),
        snapshot=catalog.info.as_dict(), detail={"name": entry["name"]},
    )


def setup(lens, prefix: str) -> list[tuple]:
    return [(rf"{prefix}api/archives/?", ArchiveCatalogHandler)]


class ArchiveCatalogHandler(LensHandler):
    async def get(self):
        who = self.require_identity()
        user = self.get_argument("user", "") or who.get("name")
        self.require_user_or_admin(user)
        with self.lens.engine.connect() as conn:
            rows = conn.execute(
                sa.select(archives).where(archives.c.owner == f"user:{user}").order_by(archives.c.created)
            ).mappings().all()
        self.write_json({"archives": [dict(r) for r in rows]})

    async def post(self):
        who = self.require_identity()
        if who.get("kind") != "user":
            raise web.HTTPError(403, "Archives are registered by their owner's server.")
        body = self.json_body()
        try:
            entry = {
                "archive_id": str(body["archive_id"]),
                "name": str(body["name"])[:200],
                "storage_class": str(body.get("storage_class", "STANDARD")),
                "size": int(body.get("size", 0)),
                "added_bytes": int(body.get("added_bytes", 0)),
                "files": int(body.get("files", 0)),
                "repository": str(body.get("repository", ""))[:500],
            }
            metering = {"objects": int(body.get("objects") or 0),
                        "pack_size": int(body.get("pack_size") or 0)}
        except (KeyError, TypeError, ValueError) as exc:
            raise web.HTTPError(400, f"Bad archive record: {exc}") from None
        if entry["storage_class"] not in STORAGE_CLASSES:
            raise web.HTTPError(400, f"storage_class must be one of {', '.join(STORAGE_CLASSES)}")
        if entry["size"] < 0 or entry["added_bytes"] < 0 or min(metering.values()) < 0:
            raise web.HTTPError(400, "sizes, objects and pack_size must be non-negative")
        user = who["name"]
        owner = f"user:{user}"
        ref = f"archive:{user}/{entry['archive_id']}"
        costs = self.lens.costs
        # The accounts (a hub call) come first, so the catalog row and its metering
        # appear together rather than a hub round-trip apart.
        accounts = await costs.accounts(user) if entry["added_bytes"] else None
        with self.lens.engine.begin() as conn:
            exists = conn.execute(
                sa.select(archives.c.id).where(archives.c.owner == owner, archives.c.archive_id == entry["archive_id"])
            ).first()
            if not exists:
                conn.execute(archives.insert().values(owner=owner, created=datetime.now(UTC).replace(tzinfo=None), **entry))
        # A registration sent again (the server's outbox retrying after a lost answer) is
        # metered once: the archive id is the idempotency key, and a metered archive is done.
        if exists and await asyncio.to_thread(was_metered, costs.ledger.engine, ref):
            self.write_json({"registered": entry["archive_id"], "duplicate": True})
            return
        if entry["added_bytes"]:
            await asyncio.to_thread(start_storage_metering, costs.meter, costs.catalog, user,
                                    accounts, {**entry, **metering})
        self.write_json({"registered": entry["archive_id"]}, status=201)


def was_metered(engine, ref: str) -> bool:
    """Whether the meter has (or had) an interval for ``ref``."""
    with engine.connect() as conn:
        return conn.execute(sa.select(cost_db.intervals.c.id).where(cost_db.intervals.c.ref == ref).limit(1)).first() \
            is not None
