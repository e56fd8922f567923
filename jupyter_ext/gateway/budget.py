"""Budget check against the lens service before a cluster is created.

``GET {LENS_SERVICE_URL}api/budget/check?user=NAME&category=dask`` answers
``{"allowed": bool, "message": str, "remaining_usd": float}``. The check fails
closed: when the service cannot answer, no cluster is created.
"""

from __future__ import annotations

from dataclasses import dataclass

from jupyter_ext.clients.base import PeerError
from jupyter_ext.clients.lens import LensClient

from ..constants import DASK


class BudgetError(Exception):
    """Creation refused because of the budget (the message is shown to the user)."""


@dataclass(frozen=True)
class BudgetDecision:
    allowed: bool
    message: str
    remaining_usd: float


def parse_decision(data) -> BudgetDecision:
    """Validate the service's JSON answer."""
    if not isinstance(data, dict) or not isinstance(data.get("allowed"), bool):
        raise BudgetError(f"budget service gave an invalid answer: {data!r}")
    return BudgetDecision(
        allowed=data["allowed"],
        message=str(data.get("message") or ""),
        remaining_usd=float(data.get("remaining_usd") or 0.0),
    )


async def check_budget(
    service_url: str,
    user: str,
    *,
    category: str = DASK,
    token: str = "",
    request_timeout: float = 5.0,
) -> BudgetDecision:
    """Ask the lens service (``jupyter_ext.clients.LensClient``); raise BudgetError when
    refused or unreachable."""
    service = LensClient(service_url, token, timeout=request_timeout)
    try:
        decision = parse_decision(await service.budget_check(user, category))
    except PeerError as exc:
        if exc.unreachable or exc.timed_out:
            raise BudgetError(f"cannot create a Dask cluster: the budget service is unavailable ({exc})") from exc
        raise BudgetError(
            f"budget check failed (HTTP {exc.status} from the lens service): {exc.message[:200]}"
        ) from exc
    if not decision.allowed:
        msg = decision.message or "your budget is exhausted"
        raise BudgetError(
            f"Dask cluster refused by budget: {msg} (remaining ${decision.remaining_usd:.2f})"
        )
    return decision
