"""Budget check against the lens service before a cluster is created.

``GET {LENS_SERVICE_URL}api/budget/check?user=NAME&category=dask`` answers
``{"allowed": bool, "message": str, "remaining_usd": float}``. The check fails
closed: when the service cannot answer, no cluster is created.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import aiohttp

from ..constants import DASK


class BudgetError(Exception):
    """Creation refused because of the budget (the message is shown to the user)."""


@dataclass(frozen=True)
class BudgetDecision:
    allowed: bool
    message: str
    remaining_usd: float


def budget_url(service_url: str) -> str:
    return service_url.rstrip("/") + "/api/budget/check"


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
    session: aiohttp.ClientSession | None = None,
) -> BudgetDecision:
    """Ask the lens service; raise BudgetError when refused or unreachable."""
    headers = {"Authorization": f"token {token}"} if token else {}
    own = session is None
    if own:
        session = aiohttp.ClientSession()
    try:
        async with session.get(
            budget_url(service_url),
            params={"user": user, "category": category},
            headers=headers,
            timeout=aiohttp.ClientTimeout(total=request_timeout),
        ) as resp:
            if resp.status != 200:
                text = (await resp.text())[:200]
                raise BudgetError(
                    f"budget check failed (HTTP {resp.status} from the lens service): {text}"
                )
            decision = parse_decision(await resp.json(content_type=None))
    except asyncio.CancelledError:
        raise
    except BudgetError:
        raise
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        raise BudgetError(
            f"cannot create a Dask cluster: the budget service is unavailable ({exc!r})"
        ) from exc
    finally:
        if own:
            await session.close()
    if not decision.allowed:
        msg = decision.message or "your budget is exhausted"
        raise BudgetError(
            f"Dask cluster refused by budget: {msg} (remaining ${decision.remaining_usd:.2f})"
        )
    return decision
