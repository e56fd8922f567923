"""The lens database: one schema, one engine factory, one default URL, migrations.

- :mod:`jupyter_ext.db.tables`: every lens table, on the one ``metadata``;
- :mod:`jupyter_ext.db.engine`: ``make_engine`` (SQLite pragmas, ``BEGIN
  IMMEDIATE`` for the ledger's writes) and ``default_url`` (``$LENS_DB_URL`` or
  ``<state dir>/lens.sqlite``);
- :mod:`jupyter_ext.db.migrate`: Alembic revisions (``alembic/versions``),
  ``ensure_schema`` (what every store and the service call) and ``upgrade``
  (``lens db upgrade``).

Imports nothing from Jupyter, so every engine and process may use it. This
``__init__`` imports none of its submodules: import them by name.
"""
