"""What `lens workshop` does, step by step (the CLI is a thin wrapper).

Order in `create`: validate everything (name, dates, profiles, roster, name
clashes) before touching anything; then the lens DB rows, the hub group and
users, the accounts, the budget and the sheet. Every step is idempotent.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from ..accounts import AccountStore, readable_password
from .content import hub_pull_link
from .model import Workshop, WorkshopError, format_usd, utcnow
from .roles import role_name
from .roster import Seat
from .seatcost import seat_costs
from .sheet import UNCHANGED, Credential, read_csv, render_csv, render_html
from .store import WorkshopStore

if TYPE_CHECKING:  # the CLI's hub adapter (jupyter_ext.cli.hubapi); the engine stays free of HTTP
    from ..cli.hubapi import HubAPI


@dataclass
class CreateResult:
    workshop: Workshop
    created_accounts: list[str] = field(default_factory=list)
    existing_accounts: list[str] = field(default_factory=list)
    created_users: list[str] = field(default_factory=list)
    group_created: bool = False
    instructor_passwords: dict[str, str] = field(default_factory=dict)
    csv_path: Path | None = None
    html_path: Path | None = None
    budget: str = ""
    role_active: bool | None = None
    content_link: str | None = None


def workshop_dir(state_root: Path, name: str) -> Path:
    path = Path(state_root) / "workshops" / name
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(path, 0o700)
    return path


def _write_private(path: Path, text: str) -> None:
    tmp = path.with_suffix(path.suffix + ".part")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def check_clashes(accounts: AccountStore, name: str, seats: list[Seat], instructors: tuple[str, ...]) -> None:
    """Seat names already used by another workshop or a regular account."""
    problems = []
    for seat in seats:
        acct = accounts.get(seat.username)
        if acct is not None and acct.workshop != name:
            owner = f"workshop {acct.workshop!r}" if acct.workshop else "a regular account"
            problems.append(f"{seat.username!r} already belongs to {owner}")
        if seat.username in instructors:
            problems.append(f"{seat.username!r} cannot be both a seat and an instructor")
    for inst in instructors:
        acct = accounts.get(inst)
        if acct is not None and acct.workshop:
            problems.append(f"instructor {inst!r} is a seat of workshop {acct.workshop!r}")
    if problems:
        raise WorkshopError("nothing was created:\n  " + "\n  ".join(problems))


def apply_group_budget(lens_db_url: str, ws: Workshop) -> str:
    """THE call site for the costs ledger: the group's budget for the workshop's
    window [created, expires) is budget-per-seat x seats, in micro-dollars."""
    if ws.budget_per_seat_micro is None:
        return "no budget"
    total = ws.budget_per_seat_micro * len(ws.seats)
    try:
        from ..costs.db import make_engine
        from ..costs.ledger import Ledger
    except ImportError:
        return f"recorded {total} micro-USD for group:{ws.name} (costs ledger not installed: kept in lens_workshops)"
    budget = Ledger(make_engine(lens_db_url)).set_budget(
        f"group:{ws.name}", total, period="window", start=ws.created_at or utcnow(), end=ws.expires_at
    )
    return f"ledger budget group:{ws.name} = {format_usd(budget.amount_micro)} until {ws.expires_at:%Y-%m-%d %H:%M} UTC"


def create_workshop(
    *,
    hub: HubAPI,
    state_root: Path,
    lens_db_url: str,
    public_url: str,
    ws: Workshop,
    seats: list[Seat],
) -> CreateResult:
    accounts = AccountStore.from_url(lens_db_url)
    store = WorkshopStore.from_url(lens_db_url)
    check_clashes(accounts, ws.name, seats, ws.instructors)
    hub.check()
    result = CreateResult(workshop=ws)
    # lens DB: settings, seats
    prior = store.get(ws.name)
    if prior is not None and prior.closed_at is not None:
        raise WorkshopError(f"workshop {ws.name!r} was closed on {prior.closed_at:%Y-%m-%d}; pick a new name")
    store.save(replace(ws, created_at=prior.created_at if prior else None))
    store.add_seats(ws.name, seats)
    ws = store.get(ws.name)
    # hub: group, users, membership
    result.group_created = hub.ensure_group(ws.name)
    result.created_users = hub.ensure_users([s for s in ws.seats] + list(ws.instructors))
    members = set(hub.group_members(ws.name))
    hub.add_to_group(ws.name, [s for s in ws.seats if s not in members])
    # accounts: create missing ones; never change an existing password
    sheet_dir = workshop_dir(state_root, ws.name)
    csv_path = sheet_dir / "credentials.csv"
    known = read_csv(csv_path.read_text()) if csv_path.exists() else {}
    details = {s.username: s for s in store.seat_details(ws.name)}
    creds = []
    for name in ws.seats:
        acct = accounts.get(name)
        if acct is None:
            known[name] = accounts.create(name, readable_password(), expires_at=ws.expires_at, workshop=ws.name)
            result.created_accounts.append(name)
        else:
            result.existing_accounts.append(name)
            if acct.expires_at != ws.expires_at:
                accounts.update(name, expires_at=ws.expires_at)
        creds.append(Credential(name, known.get(name, UNCHANGED), details[name].display_name))
    for inst in ws.instructors:
        if accounts.get(inst) is None:
            password = accounts.create(inst)
            result.instructor_passwords[inst] = password
            known[inst] = password
        if inst in known:
            creds.append(Credential(inst, known[inst], "", role="instructor"))
    login_url = public_url.rstrip("/") + "/hub/login"
    _write_private(csv_path, render_csv(ws, creds, login_url))
    html_path = sheet_dir / "credentials.html"
    _write_private(html_path, render_html(ws, creds, login_url))
    result.csv_path, result.html_path = csv_path, html_path
    result.budget = apply_group_budget(lens_db_url, ws)
    if ws.content_repo:
        result.content_link = hub_pull_link(public_url, ws.content_repo, ws.content_ref)
    if ws.instructors:
        result.role_active = all(hub.has_role(i, role_name(ws.name)) for i in ws.instructors)
    result.workshop = ws
    return result


@dataclass
class CloseResult:
    stopped: list[str]
    disabled: list[str]
    archives: dict[str, str | None]
    costs: dict[str, int]
    jobs_cancelled: dict[str, list[str]] = field(default_factory=dict)  # seat -> job ids
    problems: list[str] = field(default_factory=list)  # jobs not cancelled, files skipped


def close_workshop(
    *, hub: HubAPI, state_root: Path, lens_db_url: str, name: str, archive: bool = False,
    cancel_jobs=None,
) -> CloseResult:
    """Disable the seats, stop their servers, revoke their tokens, cancel their
    jobs (``cancel_jobs(seats) -> ({seat: [job ids]}, [problems])``, given by the
    CLI), then archive the homes: nothing of a seat runs while its home is read."""
    from .homes import archive_home, seat_home

    store = WorkshopStore.from_url(lens_db_url)
    ws = store.get(name)
    if ws is None:
        raise WorkshopError(f"no workshop {name!r}")
    accounts = AccountStore.from_url(lens_db_url)
    # Disable first, so nobody logs in again while servers stop.
    disabled = []
    for seat in ws.seats:
        if accounts.get(seat) is not None:
            accounts.update(seat, disabled=True)
            disabled.append(seat)
    store.close(name)
    stopped = hub.stop_servers(list(ws.seats))
    for seat in ws.seats:
        hub.revoke_tokens(seat)
    cancelled: dict[str, list[str]] = {}
    problems: list[str] = []
    if cancel_jobs is not None:
        cancelled, job_problems = cancel_jobs(list(ws.seats))
        problems += [f"job {p}" for p in job_problems]
    archives: dict[str, str | None] = {}
    if archive:
        dest = workshop_dir(state_root, name) / "archive"
        for seat in ws.seats:
            skipped: list[str] = []
            archives[seat] = archive_seat(seat, seat_home(seat, state_root), dest, name,
                                          archive_home, skipped=skipped)
            problems += [f"{seat}: not archived: {s}" for s in skipped]
    costs = seat_costs(store.engine, list(ws.seats), utcnow())
    return CloseResult(stopped, disabled, archives, costs, cancelled, problems)


def archive_seat(seat: str, home: Path, dest: Path, workshop: str, fallback,
                 skipped: list | None = None, after_scan=None) -> str | None:
    """Archive one seat's home with the archive engine (a deduplicated, compressed
    repository in `dest`, owned by user:SEAT); a tar.zst if the engine is absent.

    Runs as root: the engine never follows a link or opens a FIFO a seat swapped
    in after the scan (see docs/archive.md); such paths are appended to
    ``skipped``. ``after_scan`` is the engine's hook between scan and reads."""
    if not home.is_dir():
        return None
    try:
        from ..archive.engine import ArchiveEngine
        from ..archive.repository import Principal
    except ImportError:
        path = fallback(home, dest / f"{seat}.tar.zst")
        return str(path) if path else None
    engine = ArchiveEngine(repository=str(dest / "repository"), cache_dir="")
    result = engine.create([str(home)], owner=f"user:{seat}", principal=Principal(user="lens-admin", admin=True),
                           name=f"workshop-{workshop}-{seat}", tags={"workshop": workshop},
                           after_scan=after_scan)
    if skipped is not None:
        skipped.extend(result.get("skipped", []))
    entry = result.get("archive") or {}
    return f"{dest / 'repository'} {entry.get('id') or entry.get('name') or ''}".strip()


def extend_workshop(*, lens_db_url: str, name: str, expires_at: datetime) -> Workshop:
    store = WorkshopStore.from_url(lens_db_url)
    ws = store.get(name)
    if ws is None:
        raise WorkshopError(f"no workshop {name!r}")
    if ws.closed_at is not None:
        raise WorkshopError(f"workshop {name!r} is closed; extending it would not reopen the accounts")
    store.set_expiry(name, expires_at)
    accounts = AccountStore.from_url(lens_db_url)
    for seat in ws.seats:
        if accounts.get(seat) is not None:
            accounts.update(seat, expires_at=expires_at)
    ws = store.get(name)
    apply_group_budget(lens_db_url, ws)  # the budget window follows the expiry
    return ws


def export_workshop(*, lens_db_url: str, name: str, public_url: str) -> dict:
    store = WorkshopStore.from_url(lens_db_url)
    ws = store.get(name)
    if ws is None:
        raise WorkshopError(f"no workshop {name!r}")
    accounts = AccountStore.from_url(lens_db_url)
    costs = seat_costs(store.engine, list(ws.seats), utcnow())
    seats = []
    for s in store.seat_details(name):
        acct = accounts.get(s.username)
        seats.append(
            {
                "username": s.username,
                "display_name": s.display_name,
                "email": s.email,
                "disabled": bool(acct and acct.disabled),
                "expires_at": acct.expires_at.isoformat() if acct and acct.expires_at else None,
                "cost_micro_usd": costs.get(s.username, 0),
            }
        )
    return {
        "name": ws.name,
        "state": ws.state(),
        "created_at": ws.created_at.isoformat() if ws.created_at else None,
        "expires_at": ws.expires_at.isoformat() if ws.expires_at else None,
        "closed_at": ws.closed_at.isoformat() if ws.closed_at else None,
        "profiles": list(ws.profiles),
        "budget_per_seat_micro_usd": ws.budget_per_seat_micro,
        "content": {"repo": ws.content_repo, "ref": ws.content_ref,
                    "link": hub_pull_link(public_url, ws.content_repo, ws.content_ref) if ws.content_repo else None},
        "instructors": list(ws.instructors),
        "instructor_role": role_name(ws.name),
        "seats": seats,
        "total_cost_micro_usd": sum(costs.values()),
    }
