"""Dask clusters in the ledger: worker time x worker rate, charged to the owner.

Every ``CostsSettings.accrue_interval`` seconds the service reads the gateway's
usage snapshot (its /api/v1/lens/usage route, service token only) and charges
the worker time since the persisted watermark (``dask_charging``), so worker
time survives a restart of this service and is never counted twice.
"""

from __future__ import annotations

import asyncio
import os

from ..gateway.metering import Rates, fetch_usage
from . import dask_charging


class DaskMeter:
    def __init__(self, lens):
        self.lens = lens
        self.token = os.environ.get("LENS_GATEWAY_TOKEN", "")
        port = os.environ.get("LENS_GATEWAY_PORT", "8010")
        self.url = os.environ.get("LENS_GATEWAY_URL") or f"http://127.0.0.1:{port}/services/dask-gateway"
        # Fallback only: lens gateways send each cluster's rate in the snapshot.
        self.rates = Rates.from_catalog(lens.costs.catalog)
        self.ledger = lens.costs.ledger
        dask_charging.ensure_tables(self.ledger.engine)

    async def start(self) -> None:
        """First start ever: charge from now on; later starts resume at the watermark."""
        since = await asyncio.to_thread(dask_charging.start_watermark, self.ledger)
        self.lens.log.info("Dask metering resumes at watermark %d ms", since)

    async def charge_window(self) -> int:
        """Charge the worker time since the watermark; micro-USD charged (0 on failure)."""
        try:
            snapshot = await fetch_usage(self.url, self.token)
            since = await asyncio.to_thread(dask_charging.current_watermark, self.ledger)
            users = dask_charging.users_to_charge(snapshot, since, self.rates)
            accounts = {user: await self.lens.costs.accounts(user) for user in sorted(users)}
            result = await asyncio.to_thread(
                dask_charging.charge, self.ledger, snapshot, self.rates, accounts
            )
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # gateway or hub down: the same window is charged later
            self.lens.log.warning("Dask metering skipped: %s", exc)
            return 0
        return result.total_microusd


def setup(lens, prefix: str) -> list[tuple]:
    if not os.environ.get("LENS_GATEWAY_TOKEN"):
        return []
    lens.dask_meter = DaskMeter(lens)
    lens.add_startup(lens.dask_meter.start)
    lens.add_periodic(lens.costs.settings.accrue_interval, lens.dask_meter.charge_window)
    return []
