"""Settings of the costs engine (traitlets, so ``lens.yaml`` / config files can set them)."""

from __future__ import annotations

from traitlets import Bool, Integer, List, Unicode
from traitlets.config import Configurable

from .catalog import PriceCatalog, process_catalog
from .db import default_db_url, make_engine
from .ledger import Ledger
from .notify import WebhookNotifier


class CostsSettings(Configurable):
    db_url = Unicode("", help="Ledger database URL (SQLite or PostgreSQL); empty: "
                     "$LENS_DB_URL, or SQLite at $LENS_STATE_DIR/lens.sqlite.").tag(config=True)
    prices_file = Unicode("", help="Price snapshot JSON; empty: the refreshed snapshot in the "
                          "state dir if any, else the one shipped in the package.").tag(config=True)
    region = Unicode("us-east-1", help="AWS region whose prices estimates use.").tag(config=True)
    webhook_url = Unicode("", help="POST budget threshold events here as JSON (optional).").tag(config=True)
    default_thresholds = List(Integer(), default_value=[50, 80, 100],
                              help="Percentages that notify, for budgets set without their own.").tag(config=True)
    accrue_interval = Integer(60, help="Seconds between accruals of running servers, Dask "
                              "clusters and stored archives into the ledger.").tag(config=True)
    reconcile_interval = Integer(300, min=1, help="Seconds between checks of the meter against the hub's "
                                 "running servers: intervals of servers that are gone are closed, "
                                 "start holds of starts that never finished are released.").tag(config=True)
    orphan_hold_seconds = Integer(900, min=60, help="A server start hold this old, with no server running or "
                                  "starting, is released by the reconciliation (longer than any "
                                  "start may take).").tag(config=True)
    gate_hours = Unicode("1", help="Hours of a server or Dask cluster at its rate that must fit "
                         "the budget for it to start.").tag(config=True)
    stop_servers_at_limit = Bool(False, help="Stop running servers of an account that reaches "
                                 "100% of its budget (otherwise only new starts are blocked).").tag(config=True)

    def make_ledger(self, extra_notifiers=(), engine=None) -> Ledger:
        """The ledger on ``engine`` (the caller's, e.g. the service's), else on ``db_url``."""
        notifiers = [WebhookNotifier(self.webhook_url)] if self.webhook_url else []
        return Ledger(engine or make_engine(self.db_url or default_db_url()), [*notifiers, *extra_notifiers])

    def load_catalog(self) -> PriceCatalog:
        return process_catalog(self.prices_file or None, region=self.region)
