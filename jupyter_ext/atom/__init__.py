"""lens atom engine. No Jupyter imports here: the CLI, the service and the magics share it.

Entry points (import from the modules; this package imports nothing eagerly):
- ``spec.parse_spec(data, catalog) -> JobSpec`` and ``catalog.load_catalog(path=None) -> AppCatalog``;
- ``estimate.estimate(spec, catalog, prices)`` with ``prices`` the costs ``PriceCatalog``;
- ``manager.JobManager(engine, backends, ledger, catalog=..., prices=...)`` with ``submit``,
  ``list``, ``get``, ``cancel``, ``logs``, ``refresh``, ``estimate``, ``apps``, ``start``,
  ``poll``;
- backends ``LocalBackend``, ``SlurmBackend``, ``BatchBackend`` (traitlets Configurables),
  built by name with ``backends.factory.make_backend``.
"""
