"""Every table of the lens database, bound to the one ``metadata``.

The engines use their tables through the names they always had
(``jupyter_ext.costs.db.entries``, ``jupyter_ext.atom.store.jobs``, ...); they are
declared here so that one ``MetaData`` holds the whole schema, which is what the
migrations in ``jupyter_ext/db/alembic`` build. Changing a table here needs a new
migration (``tests/db/test_migrations.py`` compares the two).
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy import BigInteger, Column, DateTime, Index, Integer, String, Table, Text

metadata = sa.MetaData()

# -- costs: the ledger (jupyter_ext.costs) -------------------------------------
budgets = Table(
    "lens_budgets", metadata,
    Column("account", String(160), primary_key=True),
    Column("amount_micro", BigInteger, nullable=False),
    Column("period", String(16), nullable=False),
    Column("start", DateTime),
    Column("end", DateTime),
    Column("thresholds", String(64), nullable=False),
    Column("override_until", DateTime),
    Column("override_by", String(160)),
    Column("override_reason", Text, nullable=False, default=""),
    Column("updated_at", DateTime, nullable=False),
)

holds = Table(
    "lens_holds", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("category", String(16), nullable=False),
    Column("ref", String(255), nullable=False),
    Column("description", Text, nullable=False, default=""),
    Column("amount_micro", BigInteger, nullable=False),
    Column("actual_micro", BigInteger),
    Column("status", String(16), nullable=False),  # open | charged | released
    Column("created_at", DateTime, nullable=False),
    Column("closed_at", DateTime),
)

# The journal. Every row moves money of one account between its buckets:
# hold (available -> held), charge (held -> spent), refund/release (held ->
# available), record (available -> spent). Balances are sums over it.
entries = Table(
    "lens_entries", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", DateTime, nullable=False),
    Column("account", String(160), nullable=False),
    Column("period_key", String(64), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("category", String(16), nullable=False),
    Column("ref", String(255), nullable=False),
    Column("hold_id", Integer),
    Column("held_delta", BigInteger, nullable=False),
    Column("spent_delta", BigInteger, nullable=False),
    Index("ix_lens_entries_account_period", "account", "period_key"),
    Index("ix_lens_entries_at", "at"),
    Index("ix_lens_entries_hold", "hold_id"),
)

# Running balances per (account, period): a cache of the journal, updated in
# the same transaction as the entries (``Ledger.verify`` recomputes it).
balances = Table(
    "lens_balances", metadata,
    Column("account", String(160), primary_key=True),
    Column("period_key", String(64), primary_key=True),
    Column("held_micro", BigInteger, nullable=False),
    Column("spent_micro", BigInteger, nullable=False),
)

alerts = Table(
    "lens_alerts", metadata,
    Column("account", String(160), primary_key=True),
    Column("period_key", String(64), primary_key=True),
    Column("threshold", Integer, primary_key=True),
    Column("at", DateTime, nullable=False),
)

# Metered usage intervals (servers, Dask clusters, storage): persisted so that
# accrual survives hub restarts. One open row per ref at most.
intervals = Table(
    "lens_usage_intervals", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("ref", String(255), nullable=False),
    Column("category", String(16), nullable=False),
    Column("accounts", Text, nullable=False),  # JSON list
    Column("rate_usd_hour", String(40), nullable=False),  # exact decimal string
    Column("started_at", DateTime, nullable=False),
    Column("stopped_at", DateTime),
    Column("accrued_micro", BigInteger, nullable=False, default=0),
    Column("accrued_until", DateTime, nullable=False),
    Column("min_seconds", Integer, nullable=False, default=0),
    Column("step_seconds", Integer, nullable=False, default=0),  # accrue at most this often
    Column("snapshot", Text, nullable=False, default=""),
    Column("detail", Text, nullable=False, default="{}"),  # JSON
    Index("ix_lens_usage_ref", "ref"),
)


# -- service: meter events and watermarks (jupyter_ext.service) ---------------
# Raw server start/stop events from the spawners, until they are metered.
server_events = sa.Table(
    "lens_server_events",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("user", sa.String(64), nullable=False, index=True),
    sa.Column("server", sa.String(64), nullable=False, default=""),
    sa.Column("profile", sa.String(64), nullable=False),
    sa.Column("rate_usd_per_hour", sa.Float, nullable=False),
    sa.Column("event", sa.String(16), nullable=False),
    sa.Column("at", sa.DateTime, nullable=False),
)

# How far each metered source has been charged to the ledger (Dask: worker time
# before ``until_ms``, gateway clock). Moved in the same transaction as the ledger
# rows it covers, so a service restart neither loses nor repeats a window.
meter_watermarks = sa.Table(
    "lens_meter_watermarks",
    metadata,
    sa.Column("source", sa.String(64), primary_key=True),
    sa.Column("until_ms", sa.BigInteger, nullable=False),
    sa.Column("updated_at", sa.DateTime, nullable=False),
)

# Idempotency keys of calls already applied (``Idempotency-Key`` header, e.g. metering
# events replayed from a durable outbox): a key seen again is answered, not applied
# again (jupyter_ext.service.db: claim_key). Added by revision 0002.
idempotency_keys = sa.Table(
    "lens_idempotency_keys",
    metadata,
    sa.Column("key", sa.String(300), primary_key=True),
    sa.Column("caller", sa.String(80), nullable=False),
    sa.Column("created", sa.DateTime, nullable=False),
)

# -- archives catalog (jupyter_ext.service.archive_routes) ---------------------
archives = sa.Table(
    "lens_archives",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("owner", sa.String(80), nullable=False, index=True),
    sa.Column("archive_id", sa.String(80), nullable=False),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("storage_class", sa.String(40), nullable=False),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("added_bytes", sa.BigInteger, nullable=False),
    sa.Column("files", sa.Integer, nullable=False),
    sa.Column("repository", sa.String(500), nullable=False, default=""),
    sa.Column("created", sa.DateTime, nullable=False),
    sa.UniqueConstraint("owner", "archive_id"),
)

# -- HPC jobs (jupyter_ext.atom) -----------------------------------------------
jobs = sa.Table(
    "atom_jobs", metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("user", sa.String(128), nullable=False, index=True),
    sa.Column("backend", sa.String(32), nullable=False),
    sa.Column("backend_id", sa.String(128)),
    sa.Column("state", sa.String(16), nullable=False, index=True),
    sa.Column("created", sa.Float, nullable=False),
    sa.Column("updated", sa.Float, nullable=False),
    sa.Column("record", sa.Text, nullable=False),
)

# -- local accounts (jupyter_ext.accounts) -------------------------------------
accounts = sa.Table(
    "lens_accounts",
    metadata,
    sa.Column("username", sa.String(64), primary_key=True),
    sa.Column("password_hash", sa.String(256), nullable=False),
    sa.Column("admin", sa.Boolean, nullable=False, default=False),
    sa.Column("disabled", sa.Boolean, nullable=False, default=False),
    sa.Column("expires_at", sa.DateTime, nullable=True),
    sa.Column("workshop", sa.String(64), nullable=True),
    sa.Column("created_at", sa.DateTime, nullable=False),
)

# -- workshops (jupyter_ext.workshop) ------------------------------------------
workshops = sa.Table(
    "lens_workshops",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("expires_at", sa.DateTime, nullable=True),
    sa.Column("profiles", sa.String(512), nullable=False, default=""),
    sa.Column("budget_per_seat_micro", sa.BigInteger, nullable=True),
    sa.Column("content_repo", sa.String(1024), nullable=True),
    sa.Column("content_ref", sa.String(128), nullable=True),
    sa.Column("instructors", sa.String(1024), nullable=False, default=""),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("closed_at", sa.DateTime, nullable=True),
)
seats = sa.Table(
    "lens_workshop_seats",
    metadata,
    sa.Column("workshop", sa.String(64), primary_key=True),
    sa.Column("username", sa.String(64), primary_key=True),
    sa.Column("display_name", sa.String(256), nullable=False, default=""),
    sa.Column("email", sa.String(256), nullable=False, default=""),
)
