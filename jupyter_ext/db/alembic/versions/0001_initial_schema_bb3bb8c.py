"""Initial schema: exactly the tables lens made at commit bb3bb8c (before migrations).

Revision ID: 0001
Revises:
Create Date: 2026-12-03

A database made by lens before it had migrations has some of these tables (each
engine created its own when first used) and no version table; upgrading it
runs this revision, which creates only the tables that are missing (and their
indexes) and leaves the existing ones, with their rows, as they are.
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

TABLES = (
    "atom_jobs", "lens_accounts", "lens_alerts", "lens_archives", "lens_balances", "lens_budgets",
    "lens_entries", "lens_holds", "lens_meter_watermarks", "lens_server_events", "lens_usage_intervals",
    "lens_workshop_seats", "lens_workshops",
)


def upgrade() -> None:
    existing = set(sa.inspect(op.get_bind()).get_table_names())
    created: set[str] = set()

    def _table(name, *columns):
        if name not in existing:
            op.create_table(name, *columns)
            created.add(name)

    def _index(name, table, columns):
        if table in created:
            op.create_index(name, table, columns, unique=False)

    _table('atom_jobs',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('user', sa.String(length=128), nullable=False),
    sa.Column('backend', sa.String(length=32), nullable=False),
    sa.Column('backend_id', sa.String(length=128), nullable=True),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('created', sa.Float(), nullable=False),
    sa.Column('updated', sa.Float(), nullable=False),
    sa.Column('record', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    _index('ix_atom_jobs_state', 'atom_jobs', ['state'])
    _index('ix_atom_jobs_user', 'atom_jobs', ['user'])

    _table('lens_accounts',
    sa.Column('username', sa.String(length=64), nullable=False),
    sa.Column('password_hash', sa.String(length=256), nullable=False),
    sa.Column('admin', sa.Boolean(), nullable=False),
    sa.Column('disabled', sa.Boolean(), nullable=False),
    sa.Column('expires_at', sa.DateTime(), nullable=True),
    sa.Column('workshop', sa.String(length=64), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('username')
    )
    _table('lens_alerts',
    sa.Column('account', sa.String(length=160), nullable=False),
    sa.Column('period_key', sa.String(length=64), nullable=False),
    sa.Column('threshold', sa.Integer(), nullable=False),
    sa.Column('at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('account', 'period_key', 'threshold')
    )
    _table('lens_archives',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('owner', sa.String(length=80), nullable=False),
    sa.Column('archive_id', sa.String(length=80), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('storage_class', sa.String(length=40), nullable=False),
    sa.Column('size', sa.BigInteger(), nullable=False),
    sa.Column('added_bytes', sa.BigInteger(), nullable=False),
    sa.Column('files', sa.Integer(), nullable=False),
    sa.Column('repository', sa.String(length=500), nullable=False),
    sa.Column('created', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('owner', 'archive_id')
    )
    _index('ix_lens_archives_owner', 'lens_archives', ['owner'])

    _table('lens_balances',
    sa.Column('account', sa.String(length=160), nullable=False),
    sa.Column('period_key', sa.String(length=64), nullable=False),
    sa.Column('held_micro', sa.BigInteger(), nullable=False),
    sa.Column('spent_micro', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('account', 'period_key')
    )
    _table('lens_budgets',
    sa.Column('account', sa.String(length=160), nullable=False),
    sa.Column('amount_micro', sa.BigInteger(), nullable=False),
    sa.Column('period', sa.String(length=16), nullable=False),
    sa.Column('start', sa.DateTime(), nullable=True),
    sa.Column('end', sa.DateTime(), nullable=True),
    sa.Column('thresholds', sa.String(length=64), nullable=False),
    sa.Column('override_until', sa.DateTime(), nullable=True),
    sa.Column('override_by', sa.String(length=160), nullable=True),
    sa.Column('override_reason', sa.Text(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('account')
    )
    _table('lens_entries',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('at', sa.DateTime(), nullable=False),
    sa.Column('account', sa.String(length=160), nullable=False),
    sa.Column('period_key', sa.String(length=64), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('category', sa.String(length=16), nullable=False),
    sa.Column('ref', sa.String(length=255), nullable=False),
    sa.Column('hold_id', sa.Integer(), nullable=True),
    sa.Column('held_delta', sa.BigInteger(), nullable=False),
    sa.Column('spent_delta', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    _index('ix_lens_entries_account_period', 'lens_entries', ['account', 'period_key'])
    _index('ix_lens_entries_at', 'lens_entries', ['at'])
    _index('ix_lens_entries_hold', 'lens_entries', ['hold_id'])

    _table('lens_holds',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('category', sa.String(length=16), nullable=False),
    sa.Column('ref', sa.String(length=255), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('amount_micro', sa.BigInteger(), nullable=False),
    sa.Column('actual_micro', sa.BigInteger(), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('closed_at', sa.DateTime(), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    _table('lens_meter_watermarks',
    sa.Column('source', sa.String(length=64), nullable=False),
    sa.Column('until_ms', sa.BigInteger(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('source')
    )
    _table('lens_server_events',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('user', sa.String(length=64), nullable=False),
    sa.Column('server', sa.String(length=64), nullable=False),
    sa.Column('profile', sa.String(length=64), nullable=False),
    sa.Column('rate_usd_per_hour', sa.Float(), nullable=False),
    sa.Column('event', sa.String(length=16), nullable=False),
    sa.Column('at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    _index('ix_lens_server_events_user', 'lens_server_events', ['user'])

    _table('lens_usage_intervals',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('ref', sa.String(length=255), nullable=False),
    sa.Column('category', sa.String(length=16), nullable=False),
    sa.Column('accounts', sa.Text(), nullable=False),
    sa.Column('rate_usd_hour', sa.String(length=40), nullable=False),
    sa.Column('started_at', sa.DateTime(), nullable=False),
    sa.Column('stopped_at', sa.DateTime(), nullable=True),
    sa.Column('accrued_micro', sa.BigInteger(), nullable=False),
    sa.Column('accrued_until', sa.DateTime(), nullable=False),
    sa.Column('min_seconds', sa.Integer(), nullable=False),
    sa.Column('step_seconds', sa.Integer(), nullable=False),
    sa.Column('snapshot', sa.Text(), nullable=False),
    sa.Column('detail', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    _index('ix_lens_usage_ref', 'lens_usage_intervals', ['ref'])

    _table('lens_workshop_seats',
    sa.Column('workshop', sa.String(length=64), nullable=False),
    sa.Column('username', sa.String(length=64), nullable=False),
    sa.Column('display_name', sa.String(length=256), nullable=False),
    sa.Column('email', sa.String(length=256), nullable=False),
    sa.PrimaryKeyConstraint('workshop', 'username')
    )
    _table('lens_workshops',
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('expires_at', sa.DateTime(), nullable=True),
    sa.Column('profiles', sa.String(length=512), nullable=False),
    sa.Column('budget_per_seat_micro', sa.BigInteger(), nullable=True),
    sa.Column('content_repo', sa.String(length=1024), nullable=True),
    sa.Column('content_ref', sa.String(length=128), nullable=True),
    sa.Column('instructors', sa.String(length=1024), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('closed_at', sa.DateTime(), nullable=True),
    sa.PrimaryKeyConstraint('name')
    )


def downgrade() -> None:
    for name in reversed(TABLES):
        op.drop_table(name)
