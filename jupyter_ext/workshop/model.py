"""Workshop settings: names, dates, profile lists, money. Pure validation."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation

NAME_RE = re.compile(r"^[a-z][a-z0-9-]{0,15}$")
RELATIVE_RE = re.compile(r"^\+(\d+)([smhd])$")
UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}
MICRO = 1_000_000


class WorkshopError(ValueError):
    """Bad workshop input, with a message naming the field."""


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def validate_name(name: str) -> str:
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise WorkshopError(
            f"workshop name {name!r}: use 1-16 lowercase letters, digits or '-', starting with a letter "
            "(it becomes the hub group and the prefix of seat names)"
        )
    return name


def parse_expiry(text: str, now: datetime | None = None) -> datetime:
    """--expires: YYYY-MM-DD (valid through that day, UTC), an ISO time
    YYYY-MM-DDTHH:MM[:SS] (UTC), or relative +N[s|m|h|d]. Returns naive UTC."""
    now = now or utcnow()
    text = (text or "").strip()
    m = RELATIVE_RE.match(text)
    try:
        if m:
            return (now + timedelta(**{UNITS[m.group(2)]: int(m.group(1))})).replace(microsecond=0)
        if len(text) == 10:
            day = datetime.strptime(text, "%Y-%m-%d")
            return day + timedelta(days=1)
        value = datetime.fromisoformat(text)
    except OverflowError:  # +99999999999d, 9999-12-31 (through that day): past datetime's range
        raise WorkshopError(f"--expires {text!r}: too far ahead") from None
    except ValueError:
        raise WorkshopError(
            f"--expires {text!r}: use YYYY-MM-DD, YYYY-MM-DDTHH:MM (UTC) or +N followed by s, m, h or d"
        ) from None
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value


STARTS_LEEWAY = timedelta(minutes=5)  # "--starts 15:00" typed at 15:02 still means this class


def parse_starts(text: str | None, now: datetime | None = None) -> datetime:
    """--starts of a prewarm: when the class starts, YYYY-MM-DDTHH:MM[:SS] (UTC) or +N[s|m|h|d];
    none: now. A bare date is refused (a class starts at a time; as --expires it would mean the
    next midnight), and so is a time already past."""
    now = now or utcnow()
    text = (text or "").strip()
    if not text:
        return now
    if len(text) == 10 and not text.startswith("+"):
        raise WorkshopError(f"--starts {text!r}: give the time too, YYYY-MM-DDTHH:MM (UTC)")
    try:
        starts = parse_expiry(text, now)
    except WorkshopError as exc:
        raise WorkshopError(str(exc).replace("--expires", "--starts").replace("YYYY-MM-DD, ", "")) from None
    if starts < now - STARTS_LEEWAY:
        raise WorkshopError(f"--starts {text!r}: {starts:%Y-%m-%d %H:%M} UTC is in the past (now "
                            f"{now:%Y-%m-%d %H:%M} UTC); leave --starts out for a class that starts now")
    return starts


MINUTES_RE = re.compile(r"^(\d{1,5})([mh]?)$")


def parse_minutes(text: str, flag: str, maximum: int = 24 * 60) -> int:
    """--grace / --lead: N minutes, or N followed by m or h; 0 to ``maximum`` minutes."""
    m = MINUTES_RE.match((text or "").strip().lower())
    minutes = int(m.group(1)) * (60 if m.group(2) == "h" else 1) if m else -1
    if not 0 <= minutes <= maximum:
        raise WorkshopError(f"{flag} {text!r}: minutes from 0 to {maximum}, as N, Nm or Nh (e.g. 30, 90m, 2h)")
    return minutes


def parse_usd(text: str | float | int | None, field_name: str = "--budget-per-seat") -> int | None:
    """'12.50' -> 12_500_000 micro-dollars (never floats in the ledger)."""
    if text is None or text == "":
        return None
    try:
        value = Decimal(str(text))
    except InvalidOperation:
        raise WorkshopError(f"{field_name} {text!r}: give an amount in US dollars, e.g. 5 or 12.50") from None
    if not value.is_finite() or value < 0:
        raise WorkshopError(f"{field_name} {text!r}: must be a non-negative amount in US dollars")
    return int((value * MICRO).to_integral_value())


def format_usd(micro: int | None) -> str:
    if micro is None:
        return "-"
    return f"${Decimal(micro) / MICRO:.2f}"


def parse_list(text: str | None, field_name: str, pattern: re.Pattern) -> tuple[str, ...]:
    if not text:
        return ()
    items = [x.strip() for x in text.split(",") if x.strip()]
    bad = [x for x in items if not pattern.match(x)]
    if bad:
        raise WorkshopError(f"{field_name}: invalid entries {', '.join(map(repr, bad))}")
    return tuple(dict.fromkeys(items))


def check_profiles(profiles: tuple[str, ...], known: list[str]) -> tuple[str, ...]:
    unknown = [p for p in profiles if p not in known]
    if unknown:
        raise WorkshopError(
            f"--profiles: unknown profile(s) {', '.join(unknown)}; allowed: {', '.join(known)}"
        )
    return profiles


@dataclass(frozen=True)
class Workshop:
    name: str
    expires_at: datetime | None
    profiles: tuple[str, ...]
    budget_per_seat_micro: int | None = None
    content_repo: str | None = None
    content_ref: str | None = None
    instructors: tuple[str, ...] = ()
    closed_at: datetime | None = None
    created_at: datetime | None = None
    seats: tuple[str, ...] = field(default=())

    def expired(self, now: datetime | None = None) -> bool:
        now = now or utcnow()
        return self.expires_at is not None and now >= self.expires_at

    def active(self, now: datetime | None = None) -> bool:
        return self.closed_at is None and not self.expired(now)

    def state(self, now: datetime | None = None) -> str:
        if self.closed_at is not None:
            return "closed"
        return "expired" if self.expired(now) else "open"
