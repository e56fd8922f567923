"""Budget notifications through a pluggable Notifier.

The ledger always logs. Add a ``WebhookNotifier`` for an HTTP POST, or a
``CallbackNotifier`` wrapping any function (the hub announcement hook uses it).
A notifier must not raise; failures are logged and swallowed, so a broken
webhook never blocks money from moving.
"""

from __future__ import annotations

import json
import logging
import urllib.request
from dataclasses import asdict, dataclass
from typing import Protocol

from .money import usd

log = logging.getLogger("lens.costs")


@dataclass(frozen=True)
class BudgetEvent:
    account: str
    threshold: int  # percent
    spent_micro: int
    budget_micro: int
    period_key: str
    at: str  # ISO 8601 UTC

    @property
    def blocked(self) -> bool:
        return self.threshold >= 100

    @property
    def message(self) -> str:
        text = (
            f"{self.account} has used {self.threshold}% of its budget for {self.period_key}: "
            f"{usd(self.spent_micro)} of {usd(self.budget_micro)}."
        )
        if self.blocked:
            text += " New servers, jobs and Dask clusters are blocked until an admin overrides or raises it."
        return text

    def as_dict(self) -> dict:
        return {**asdict(self), "message": self.message, "blocked": self.blocked}


class Notifier(Protocol):
    def notify(self, event: BudgetEvent) -> None: ...


class LogNotifier:
    def __init__(self, logger: logging.Logger | None = None):
        self.log = logger or log

    def notify(self, event: BudgetEvent) -> None:
        level = logging.WARNING if event.threshold >= 80 else logging.INFO
        self.log.log(level, "budget threshold: %s", event.message)


class WebhookNotifier:
    """POST the event as JSON to ``url`` (e.g. a Slack/Teams/Mattermost bridge)."""

    def __init__(self, url: str, timeout: float = 5.0, headers: dict[str, str] | None = None):
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"url: {url!r} must start with http:// or https://")
        self.url, self.timeout, self.headers = url, timeout, dict(headers or {})

    def notify(self, event: BudgetEvent) -> None:
        body = json.dumps({"text": event.message, "event": event.as_dict()}).encode()
        req = urllib.request.Request(
            self.url, data=body, method="POST",
            headers={"Content-Type": "application/json", **self.headers},
        )
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:  # noqa: S310 (http/https checked)
                resp.read()
        except Exception as exc:  # a notifier never raises
            log.warning("budget webhook %s failed: %s", self.url, exc)


class CallbackNotifier:
    """Wrap a plain function ``fn(event)``; e.g. the hub's announcement/banner hook."""

    def __init__(self, fn):
        self.fn = fn

    def notify(self, event: BudgetEvent) -> None:
        try:
            self.fn(event)
        except Exception as exc:
            log.warning("budget notifier %r failed: %s", self.fn, exc)


def dispatch(notifiers, events) -> None:
    for event in events:
        for notifier in notifiers:
            try:
                notifier.notify(event)
            except Exception as exc:  # belt and braces: third-party notifiers may raise
                log.warning("budget notifier %r failed: %s", notifier, exc)
