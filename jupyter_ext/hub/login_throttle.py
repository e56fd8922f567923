"""Failed-login throttling for the hub's password authenticator (pure logic, in memory).

Each key (a user name, or a client address) may fail `limit` times; from then on
every further failure locks the key for an exponentially growing window
(`base`, 2×`base`, 4×`base`, ... up to `cap` seconds). While locked, attempts
are refused without checking the password. A key is forgotten `forget_after`
seconds after its last failure (and a user's on a successful login). At most
`max_keys` keys are kept: the least recently failed ones go first, locked keys last.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class _Entry:
    failures: int = 0
    locked_until: float = 0.0
    last_failure: float = 0.0


class LoginThrottle:
    def __init__(self, limit: int = 5, base: float = 2.0, cap: float = 900.0, forget_after: float = 3600.0,
                 max_keys: int = 10_000, clock: Callable[[], float] = time.monotonic):
        if limit < 1 or base <= 0 or cap < base or max_keys < 1:
            raise ValueError("LoginThrottle: need limit >= 1, 0 < base <= cap, max_keys >= 1")
        self.limit, self.base, self.cap = limit, base, cap
        self.forget_after, self.max_keys, self.clock = forget_after, max_keys, clock
        self._entries: OrderedDict[str, _Entry] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def _get(self, key: str, now: float) -> _Entry | None:
        entry = self._entries.get(key)
        if entry is not None and now >= entry.locked_until and now - entry.last_failure > self.forget_after:
            del self._entries[key]
            return None
        return entry

    def retry_after(self, key: str) -> int:
        """Whole seconds until KEY may try again (0: now)."""
        now = self.clock()
        entry = self._get(key, now)
        if entry is None or now >= entry.locked_until:
            return 0
        return max(1, math.ceil(entry.locked_until - now))

    def failed(self, key: str) -> int:
        """Record a failure; return the seconds KEY is now locked for (0: not locked)."""
        now = self.clock()
        entry = self._get(key, now) or _Entry()
        entry.failures += 1
        entry.last_failure = now
        window = 0.0
        if entry.failures >= self.limit:
            window = min(self.cap, self.base * 2 ** min(entry.failures - self.limit, 32))
            entry.locked_until = now + window
        self._entries[key] = entry
        self._entries.move_to_end(key)
        self._evict(now)
        return math.ceil(window)

    def succeeded(self, key: str) -> None:
        self._entries.pop(key, None)

    def _evict(self, now: float) -> None:
        if len(self._entries) <= self.max_keys:
            return
        for key in [k for k, e in self._entries.items() if now >= e.locked_until]:
            if len(self._entries) <= self.max_keys:
                return
            del self._entries[key]  # oldest unlocked first (insertion order = last failure)
        while len(self._entries) > self.max_keys:
            self._entries.popitem(last=False)
