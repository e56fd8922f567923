"""The archive catalog: archives users made, per owner, metered as storage."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import sqlalchemy as sa
from tornado import web

from ..costs.meter import min_storage_seconds, storage_rate
from ..db.tables import archives
from .base import LensHandler

CLASSES = ("STANDARD", "STANDARD_IA", "GLACIER_IR", "GLACIER", "DEEP_ARCHIVE", "INTELLIGENT_TIERING")
PACK_SIZE = 16 * 2**20  # objects are ~pack-sized; used for per-object fees and minimums


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
        except (KeyError, TypeError, ValueError) as exc:
            raise web.HTTPError(400, f"Bad archive record: {exc}") from None
        if entry["storage_class"] not in CLASSES:
            raise web.HTTPError(400, f"storage_class must be one of {', '.join(CLASSES)}")
        if entry["size"] < 0 or entry["added_bytes"] < 0:
            raise web.HTTPError(400, "sizes must be non-negative")
        user = who["name"]
        owner = f"user:{user}"
        with self.lens.engine.begin() as conn:
            exists = conn.execute(
                sa.select(archives.c.id).where(archives.c.owner == owner, archives.c.archive_id == entry["archive_id"])
            ).first()
            if not exists:
                conn.execute(archives.insert().values(owner=owner, created=datetime.now(UTC).replace(tzinfo=None), **entry))
        costs = self.lens.costs
        # Only the bytes this archive added are new storage; dedup makes the rest free.
        added = entry["added_bytes"]
        objects = max(1, -(-added // PACK_SIZE)) if added else 0
        if added:
            rate, _, _ = storage_rate(costs.catalog, entry["storage_class"], added, objects)
            accounts = await costs.accounts(user)
            await asyncio.to_thread(
                costs.meter.start, f"archive:{user}/{entry['archive_id']}", "storage", accounts, rate,
                min_seconds=min_storage_seconds(costs.catalog, entry["storage_class"]),
                snapshot=costs.catalog.info.as_dict(), detail={"name": entry["name"]},
            )
        self.write_json({"registered": entry["archive_id"]}, status=201)
