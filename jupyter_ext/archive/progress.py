"""Progress reports for long operations, delivered through a callback.

A background task (the server extension) passes ``callback``; it is called from
worker threads at most every ``interval`` seconds, and once at the end.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field

from .errors import Cancelled

log = logging.getLogger(__name__)


@dataclass
class Progress:
    phase: str = "scan"
    files_total: int = 0
    files_done: int = 0
    bytes_total: int = 0
    bytes_done: int = 0
    bytes_new: int = 0        # raw bytes of chunks not yet in the repository
    bytes_stored: int = 0     # packed bytes written (after compression)
    packs: int = 0
    started: float = field(default_factory=time.monotonic)
    finished: float | None = None

    @property
    def elapsed(self) -> float:
        return (self.finished or time.monotonic()) - self.started

    @property
    def dedup_ratio(self) -> float | None:
        """Bytes read per new byte (1.0 = nothing deduplicated; None = all duplicate)."""
        if not self.bytes_new:
            return None if self.bytes_done else 1.0
        return self.bytes_done / self.bytes_new

    @property
    def dedup_fraction(self) -> float:
        """Share of the bytes read that were already in the repository."""
        return 1.0 - self.bytes_new / self.bytes_done if self.bytes_done else 0.0

    @property
    def mb_per_s(self) -> float:
        return self.bytes_done / 1e6 / self.elapsed if self.elapsed > 0 else 0.0

    @property
    def eta(self) -> float | None:
        rate = self.bytes_done / self.elapsed if self.elapsed > 0 else 0
        if not rate or not self.bytes_total:  # no total yet: the scan runs beside the reads
            return None
        return max(0.0, (self.bytes_total - self.bytes_done) / rate)

    def as_dict(self) -> dict:
        return {"phase": self.phase, "files_total": self.files_total,
                "files_done": self.files_done, "bytes_total": self.bytes_total,
                "bytes_done": self.bytes_done, "bytes_new": self.bytes_new,
                "bytes_stored": self.bytes_stored, "packs": self.packs,
                "elapsed": round(self.elapsed, 3), "dedup_ratio": None if self.dedup_ratio is None else round(self.dedup_ratio, 3),
                "dedup_fraction": round(self.dedup_fraction, 4),
                "mb_per_s": round(self.mb_per_s, 2),
                "eta": None if self.eta is None else round(self.eta, 1)}


class Reporter:
    """Thread-safe counters + throttled callback + cooperative cancellation."""

    def __init__(self, callback=None, cancel: threading.Event | None = None,
                 interval: float = 0.25):
        self.p = Progress()
        self.callback = callback
        self.cancel = cancel
        self.interval = interval
        self._lock = threading.Lock()
        self._last = 0.0

    def add(self, **deltas) -> None:
        with self._lock:
            for k, v in deltas.items():
                setattr(self.p, k, getattr(self.p, k) + v)
        self.maybe_report()

    def set(self, **values) -> None:
        with self._lock:
            for k, v in values.items():
                setattr(self.p, k, v)
        self.maybe_report(force=True)

    def check(self) -> None:
        if self.cancel is not None and self.cancel.is_set():
            raise Cancelled("cancelled")

    def maybe_report(self, force: bool = False) -> None:
        if self.callback is None:
            return
        now = time.monotonic()
        if not force and now - self._last < self.interval:
            return
        self._last = now
        try:
            self.callback(self.p)
        except Cancelled:
            raise
        except Exception:  # a broken display must not break an archive or a restore
            log.exception("progress callback failed")

    def finish(self) -> Progress:
        self.p.finished = time.monotonic()
        self.p.phase = "done"
        self.maybe_report(force=True)
        return self.p
