"""lens costs engine. No Jupyter imports here: the CLI, the service and the magics share it.

Import from the modules (this package imports nothing eagerly):
- ``money``: integer micro-dollars, exact decimal parsing and formatting.
- ``catalog``: the dated AWS price snapshot (``PriceCatalog``), the only source of prices,
  and ``process_catalog()``, the one instance a process uses.
- ``refresh``: update the snapshot from the Pricing API and spot price history.
- ``meter``: usage -> micro-dollars (servers, Dask, jobs, storage incl. Glacier rules).
- ``budgets``: accounts, periods, thresholds, ``AccountSummary``.
- ``ledger``: ``Ledger`` (hold -> charge -> refund), ``BudgetExceeded``.
- ``usage``: ``UsageMeter``, persisted intervals accrued into the ledger.
- ``gate``: the budget checks for spawns, jobs and Dask clusters.
- ``notify``: ``Notifier`` protocol, log / webhook / callback notifiers.
- ``reports``: data for ``%costs`` and the admin page (tables, CSV, Prometheus).
- ``reconcile``: Cost Explorer vs meter.
- ``config``: ``CostsSettings`` (traitlets).
"""
