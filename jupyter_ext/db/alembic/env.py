"""Alembic environment of the lens database.

Run through :mod:`jupyter_ext.db.migrate` (``lens db upgrade``), which passes an
open connection in ``config.attributes["connection"]``; there is no alembic.ini.
"""

from alembic import context

from jupyter_ext.db.migrate import VERSION_TABLE
from jupyter_ext.db.tables import metadata

config = context.config
connection = config.attributes.get("connection")
if connection is None or context.is_offline_mode():
    raise RuntimeError("run lens migrations with `lens db upgrade` (jupyter_ext.db.migrate), not the alembic CLI")

context.configure(
    connection=connection,
    target_metadata=metadata,
    version_table=VERSION_TABLE,
    render_as_batch=True,  # SQLite ALTERs go through table copies
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
