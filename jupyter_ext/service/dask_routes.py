"""Dask clusters in the ledger: worker time x worker rate, charged to the owner.

The gateway reports every cluster's workers (its /api/v1/lens/usage route,
service token only); each charging window books the worker time that fell in
it, so nothing is counted twice.
"""

from __future__ import annotations

import asyncio
import os
import time

from ..costs import gate
from ..gateway.metering import Rates, meter
from ..gateway.settings import GatewaySettings


class DaskMeter:
    def __init__(self, lens):
        self.lens = lens
        self.token = os.environ.get("LENS_GATEWAY_TOKEN", "")
        port = os.environ.get("LENS_GATEWAY_PORT", "8010")
        self.url = os.environ.get("LENS_GATEWAY_URL") or f"http://127.0.0.1:{port}/services/dask-gateway"
        self.rates = Rates.from_settings(GatewaySettings())
        # Worker time before the service started was charged by the previous run
        # (or is lost with it; see README "Known limits").
        self.since_ms = int(time.time() * 1000)

    async def charge_window(self) -> int:
        until_ms = int(time.time() * 1000)
        try:
            intervals = await meter(self.url, self.token, self.since_ms, until_ms, rates=self.rates)
        except Exception as exc:  # gateway down: try the same window again later
            self.lens.log.warning("Dask metering skipped: %s", exc)
            return 0
        costs = self.lens.costs
        total = 0
        for iv in intervals:
            if iv.cost_microusd <= 0:
                continue
            accounts = gate.accounts_for(iv.user, await costs.groups_of(iv.user))
            ref = f"dask:{iv.cluster}/{iv.worker}:{iv.start_ms}-{iv.end_ms}"
            await asyncio.to_thread(costs.ledger.record, accounts, iv.cost_microusd, "dask", ref)
            total += iv.cost_microusd
        self.since_ms = until_ms
        return total


def setup(lens, prefix: str) -> list[tuple]:
    if not os.environ.get("LENS_GATEWAY_TOKEN"):
        return []
    lens.dask_meter = DaskMeter(lens)
    lens.add_periodic(lens.costs.settings.accrue_interval, lens.dask_meter.charge_window)
    return []
