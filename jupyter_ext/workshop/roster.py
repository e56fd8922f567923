"""Rosters and seats: who gets an account. Every bad line is reported, with its
number, before anything is created."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass

from ..accounts import USERNAME_RE

MAX_SEATS = 500
COLUMNS = ("username", "display_name", "email")


@dataclass(frozen=True)
class Seat:
    username: str
    display_name: str = ""
    email: str = ""


class RosterError(ValueError):
    """A roster with problems: `problems` is a list of (line number, message)."""

    def __init__(self, source: str, problems: list[tuple[int, str]]):
        self.source = source
        self.problems = problems
        lines = "\n".join(f"  {source}:{n}: {msg}" for n, msg in problems)
        super().__init__(f"the roster has {len(problems)} problem(s); nothing was created:\n{lines}")


def seat_names(workshop: str, seats: int) -> list[Seat]:
    """--seats N: NAME-01 .. NAME-NN (three digits from 100 seats)."""
    if not isinstance(seats, int) or isinstance(seats, bool) or not 1 <= seats <= MAX_SEATS:
        raise ValueError(f"--seats must be a whole number from 1 to {MAX_SEATS}")
    width = 3 if seats >= 100 else 2
    return [Seat(f"{workshop}-{i:0{width}d}") for i in range(1, seats + 1)]


def parse_roster(text: str, source: str = "roster.csv") -> list[Seat]:
    """CSV with a header naming `username` (and optionally display_name, email);
    a file without a header is one user name per line. Blank lines and lines
    starting with '#' are skipped."""
    lines = text.splitlines()
    numbered = [(i + 1, line) for i, line in enumerate(lines) if line.strip() and not line.lstrip().startswith("#")]
    if not numbered:
        raise RosterError(source, [(1, "the roster is empty")])
    first = [c.strip().lower() for c in next(csv.reader([numbered[0][1]]))]
    problems: list[tuple[int, str]] = []
    if "username" in first:
        unknown = [c for c in first if c not in COLUMNS]
        if unknown:
            problems.append((numbered[0][0], f"unknown column(s) {', '.join(unknown)}; allowed: {', '.join(COLUMNS)}"))
        header, body = first, numbered[1:]
    else:
        header, body = ["username"], numbered
    seats: list[Seat] = []
    seen: dict[str, int] = {}
    for number, line in body:
        row = next(csv.reader(io.StringIO(line)), [])
        if len(row) > len(header):
            problems.append((number, f"{len(row)} fields, but the header has {len(header)}"))
            continue
        values = dict(zip(header, (c.strip() for c in row), strict=False))
        name = values.get("username", "")
        if not name:
            problems.append((number, "the username is empty"))
            continue
        if not USERNAME_RE.match(name):
            problems.append(
                (number, f"invalid username {name!r}: use 1-24 lowercase letters, digits, '-' or '_', starting with a letter")
            )
            continue
        if name in seen:
            problems.append((number, f"duplicate username {name!r} (first on line {seen[name]})"))
            continue
        seen[name] = number
        seats.append(Seat(name, values.get("display_name", ""), values.get("email", "")))
    if len(seats) > MAX_SEATS:
        problems.append((body[-1][0], f"more than {MAX_SEATS} seats"))
    if problems:
        raise RosterError(source, problems)
    if not seats:
        raise RosterError(source, [(numbered[0][0], "the roster names no users")])
    return seats
