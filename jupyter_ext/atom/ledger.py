"""The ledger protocol the JobManager charges through (implemented by jupyter_ext.costs)."""

from __future__ import annotations

from typing import Protocol, runtime_checkable


@runtime_checkable
class LedgerProtocol(Protocol):
    def hold(self, accounts: list[str], amount_micro: int, category: str, ref: str,
             description: str = "") -> str:
        """Reserve money on every account; raise BudgetExceeded (.estimate, .remaining)."""

    def charge(self, hold_id: str, actual_micro: int) -> None:
        """Charge the actual amount and refund the rest of the hold."""

    def release(self, hold_id: str) -> None:
        """Give the whole hold back."""
