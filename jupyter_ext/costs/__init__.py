"""lens costs engine. No Jupyter imports here: the CLI, the service and the magics share it.

Modules:
- ``money``: integer micro-dollars, exact decimal parsing and formatting.
- ``catalog``: the dated AWS price snapshot (``PriceCatalog``).
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

from .budgets import CATEGORIES, AccountSummary, Budget
from .catalog import PriceCatalog, PriceNotFound
from .ledger import BudgetExceeded, HoldError, Ledger
from .meter import Estimate
from .notify import BudgetEvent, CallbackNotifier, LogNotifier, Notifier, WebhookNotifier
from .usage import UsageMeter

__all__ = [
    "CATEGORIES", "AccountSummary", "Budget", "BudgetEvent", "BudgetExceeded", "CallbackNotifier",
    "Estimate", "HoldError", "Ledger", "LogNotifier", "Notifier", "PriceCatalog", "PriceNotFound",
    "UsageMeter", "WebhookNotifier",
]
