"""What `lens workshop` does, step by step (the CLI is a thin wrapper).

Order in `create`: validate everything (name, dates, profiles, roster, name
clashes, and what already exists on the hub: a workshop takes nothing over
unless told to adopt it) before touching anything; then the lens DB rows, the
accounts and the sheet, the hub group and users, the budget. Every step is
idempotent.
"""

from __future__ import annotations

import json
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
from .sheet import EXISTING, UNCHANGED, Credential, read_csv, render_csv, render_html
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
    adopted_users: list[str] = field(default_factory=list)  # seats that were existing accounts
    adopted_group: bool = False  # the hub group existed before the workshop
    outsiders: list[str] = field(default_factory=list)  # members of the group that are not seats
    existing_instructors: list[str] = field(default_factory=list)  # hub users: no password made


ADOPTION_FILE = "adopted.json"


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


def read_adoption(state_root: Path, name: str) -> dict:
    """What ``create --adopt`` took in: ``group_existed``, ``adopted`` (seats that were
    existing accounts) and ``added_to_group`` (those lens put into the group; close
    takes them out again)."""
    path = Path(state_root) / "workshops" / name / ADOPTION_FILE
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def owned_seats(accounts: AccountStore, ws: Workshop) -> list[str]:
    """The seats whose account the workshop made (tagged with its name). The others
    were adopted: existing accounts that the workshop never disables, expires, stops,
    archives or gives a password."""
    return [s for s in ws.seats if (a := accounts.get(s)) is not None and a.workshop == ws.name]


def check_clashes(accounts: AccountStore, name: str, seats: list[Seat], instructors: tuple[str, ...],
                  *, adopt: bool = False, recorded: frozenset[str] = frozenset()) -> list[str]:
    """Seat names already used by another workshop (always refused), or by a regular
    account (refused unless adopted, or already a seat of this workshop)."""
    problems = []
    for seat in seats:
        acct = accounts.get(seat.username)
        if acct is not None and acct.workshop != name:
            if acct.workshop:
                problems.append(f"{seat.username!r} already belongs to workshop {acct.workshop!r}")
            elif not adopt and seat.username not in recorded:
                problems.append(f"{seat.username!r} already belongs to a regular account")
        if seat.username in instructors:
            problems.append(f"{seat.username!r} cannot be both a seat and an instructor")
    for inst in instructors:
        acct = accounts.get(inst)
        if acct is not None and acct.workshop:
            problems.append(f"instructor {inst!r} is a seat of workshop {acct.workshop!r}")
    return problems


def check_takeover(hub: HubAPI, name: str, seats: list[Seat], *, first_run: bool,
                   recorded: frozenset[str]) -> list[str]:
    """What the workshop would take over on the hub, one line each. The group counts
    on the first run only (on a re-run it is the workshop's own, or was adopted then);
    seats recorded by an earlier run are the workshop's."""
    problems: list[str] = []
    if first_run:
        group = hub.group(name)
        if group is not None:
            members = sorted(group.get("users") or [])
            who = f", with member(s) {', '.join(members)}" if members else " (no members)"
            problems.append(f"hub group {name!r} already exists{who}")
    existing = hub.existing_users([s.username for s in seats if s.username not in recorded])
    if existing:
        problems.append(f"hub user(s) already exist: {', '.join(existing)}")
    return problems


def apply_group_budget(lens_db_url: str, ws: Workshop) -> str:
    """THE call site for the costs ledger, for the workshop's window [created, expires):
    - each seat gets its own budget of the per-seat amount, so one student cannot
      spend what the class was given;
    - the group's budget (per seat x seats) stays as the class's cap.
    An adopted seat (an account the workshop did not make) that already has a budget
    of its own keeps it."""
    if ws.budget_per_seat_micro is None:
        return "no budget"
    total = ws.budget_per_seat_micro * len(ws.seats)
    try:
        from ..costs.db import make_engine
        from ..costs.ledger import Ledger
    except ImportError:
        return f"recorded {total} micro-USD for group:{ws.name} (costs ledger not installed: kept in lens_workshops)"
    ledger = Ledger(make_engine(lens_db_url))
    window = {"period": "window", "start": ws.created_at or utcnow(), "end": ws.expires_at}
    own = set(owned_seats(AccountStore.from_url(lens_db_url), ws))
    kept = []
    for seat in ws.seats:
        if seat not in own and ledger.get_budget(f"user:{seat}") is not None:
            kept.append(seat)  # adopted, with a budget of its own
            continue
        ledger.set_budget(f"user:{seat}", ws.budget_per_seat_micro, **window)
    budget = ledger.set_budget(f"group:{ws.name}", total, **window)
    note = (f"ledger budget {format_usd(ws.budget_per_seat_micro)} for each seat (user:SEAT), "
            f"group:{ws.name} = {format_usd(budget.amount_micro)} for the class, "
            f"until {ws.expires_at:%Y-%m-%d %H:%M} UTC")
    if kept:
        note += f"; adopted seats keep their own budget: {', '.join(kept)}"
    return note


def budget_outsiders(hub: HubAPI, ws: Workshop, seats: list[Seat], recorded: frozenset[str]) -> list[str]:
    """Members of the workshop's group that are not seats, when the workshop would set the
    group's budget: they would spend the seats' budget (and be held to it)."""
    if ws.budget_per_seat_micro is None:
        return []
    group = hub.group(ws.name) or {}
    return sorted(set(group.get("users") or []) - {s.username for s in seats} - set(recorded))


def create_workshop(
    *,
    hub: HubAPI,
    state_root: Path,
    lens_db_url: str,
    public_url: str,
    ws: Workshop,
    seats: list[Seat],
    adopt: bool = False,
) -> CreateResult:
    """Create or complete a workshop. It takes nothing over: an existing hub group,
    existing hub users and regular accounts named as seats are refused, named, before
    anything changes, unless ``adopt``. Adopted accounts keep their password and are
    never disabled, expired, stopped or archived by the workshop."""
    accounts = AccountStore.from_url(lens_db_url)
    store = WorkshopStore.from_url(lens_db_url)
    prior = store.get(ws.name)
    if prior is not None and prior.closed_at is not None:
        raise WorkshopError(f"workshop {ws.name!r} was closed on {prior.closed_at:%Y-%m-%d}; pick a new name")
    recorded = frozenset(prior.seats) if prior else frozenset()
    problems = check_clashes(accounts, ws.name, seats, ws.instructors, adopt=adopt, recorded=recorded)
    if problems:
        raise WorkshopError("nothing was created:\n  " + "\n  ".join(problems))
    hub.check()
    taken = check_takeover(hub, ws.name, seats, first_run=prior is None, recorded=recorded)
    if taken and not adopt:
        raise WorkshopError(
            "nothing was created: the workshop would take over what already exists on the hub:\n  "
            + "\n  ".join(taken)
            + "\n  pick another name or other seat names, or give --adopt to take them in as they are "
            "(existing accounts become seats and keep their passwords; group members that are not "
            "seats get nothing of the workshop)"
        )
    outsiders = budget_outsiders(hub, ws, seats, recorded)
    if outsiders:
        raise WorkshopError(
            f"nothing was created: --budget-per-seat sets the budget of hub group {ws.name!r}, and every "
            f"member spends from it and is held to it, so {', '.join(outsiders)} (not seats) would too; "
            "create the workshop under a group of its own, or without --budget-per-seat")
    result = CreateResult(workshop=ws)
    group_existed = prior is None and hub.group(ws.name) is not None
    # Which users the hub has already: looked at before anything is made.
    names = list(dict.fromkeys([s.username for s in seats] + list(recorded) + list(ws.instructors)))
    on_hub = set(hub.existing_users(names))
    # lens DB: settings, seats
    store.save(replace(ws, created_at=prior.created_at if prior else None))
    store.add_seats(ws.name, seats)
    ws = store.get(ws.name)
    # Accounts, before the hub users: so a seat without an account of this workshop that
    # the hub already knows is an existing user (adopted), and never gets a password.
    sheet_dir = workshop_dir(state_root, ws.name)
    csv_path = sheet_dir / "credentials.csv"
    html_path = sheet_dir / "credentials.html"
    known = read_csv(csv_path.read_text()) if csv_path.exists() else {}
    details = {s.username: s for s in store.seat_details(ws.name)}
    adopted: list[str] = []
    for name in ws.seats:
        acct = accounts.get(name)
        if acct is None and name not in on_hub:
            known[name] = accounts.create(name, readable_password(), expires_at=ws.expires_at, workshop=ws.name)
            result.created_accounts.append(name)
        elif acct is not None and acct.workshop == ws.name:
            result.existing_accounts.append(name)
            if acct.expires_at != ws.expires_at:
                accounts.update(name, expires_at=ws.expires_at)
        else:  # adopted: a regular account or a hub user; its password and expiry stay as they are
            adopted.append(name)
    result.adopted_users = adopted
    for inst in ws.instructors:
        if accounts.get(inst) is None:
            if inst in on_hub:
                result.existing_instructors.append(inst)  # an existing hub user: no password from lens
            else:
                password = accounts.create(inst)
                result.instructor_passwords[inst] = password
                known[inst] = password
    login_url = public_url.rstrip("/") + "/hub/login"
    creds = [Credential(n, EXISTING if n in adopted else known.get(n, UNCHANGED), details[n].display_name)
             for n in ws.seats]
    creds += [Credential(i, known[i], "", role="instructor") for i in ws.instructors if i in known]
    # Written now: the sheet is the only copy of new passwords, whatever the hub does next.
    _write_private(csv_path, render_csv(ws, creds, login_url))
    _write_private(html_path, render_html(ws, creds, login_url))
    result.csv_path, result.html_path = csv_path, html_path
    # hub: group, users, membership
    result.group_created = hub.ensure_group(ws.name)
    result.created_users = hub.ensure_users([s for s in ws.seats] + list(ws.instructors))
    members = set(hub.group_members(ws.name))
    hub.add_to_group(ws.name, [s for s in ws.seats if s not in members])
    result.outsiders = sorted(members - set(ws.seats))
    record = read_adoption(state_root, ws.name)
    if group_existed or adopted or record:
        record.setdefault("group_existed", group_existed)
        record["adopted"] = sorted(set(record.get("adopted", [])) | set(adopted))
        record["added_to_group"] = sorted(set(record.get("added_to_group", []))
                                          | {s for s in adopted if s not in members})
        _write_private(sheet_dir / ADOPTION_FILE, json.dumps(record, indent=1) + "\n")
    result.adopted_group = bool(record.get("group_existed"))
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
    kept: list[str] = field(default_factory=list)  # adopted accounts: left as they were


def close_workshop(
    *, hub: HubAPI, state_root: Path, lens_db_url: str, name: str, archive: bool = False,
    cancel_jobs=None,
) -> CloseResult:
    """Disable the seats, stop their servers, revoke their tokens, cancel their
    jobs (``cancel_jobs(seats) -> ({seat: [job ids]}, [problems])``, given by the
    CLI), then archive the homes: nothing of a seat runs while its home is read.

    Only the seats the workshop made: adopted accounts (see ``owned_seats``) are
    kept as they are, and only leave the workshop (and its group, if lens put them
    there); the workshop's rules no longer apply to them once it is closed."""
    from .homes import archive_home, seat_home

    store = WorkshopStore.from_url(lens_db_url)
    ws = store.get(name)
    if ws is None:
        raise WorkshopError(f"no workshop {name!r}")
    accounts = AccountStore.from_url(lens_db_url)
    own = owned_seats(accounts, ws)
    kept = [s for s in ws.seats if s not in own]
    # Disable first, so nobody logs in again while servers stop.
    disabled = []
    for seat in own:
        accounts.update(seat, disabled=True)
        disabled.append(seat)
    store.close(name)
    if kept:
        added = set(read_adoption(state_root, name).get("added_to_group", []))
        hub.remove_from_group(name, [s for s in kept if s in added])
    stopped = hub.stop_servers(own)
    for seat in own:
        hub.revoke_tokens(seat)
    cancelled: dict[str, list[str]] = {}
    problems: list[str] = []
    if cancel_jobs is not None and own:
        cancelled, job_problems = cancel_jobs(own)
        problems += [f"job {p}" for p in job_problems]
    archives: dict[str, str | None] = {}
    if archive:
        dest = workshop_dir(state_root, name) / "archive"
        for seat in own:
            skipped: list[str] = []
            archives[seat] = archive_seat(seat, seat_home(seat, state_root), dest, name,
                                          archive_home, skipped=skipped)
            problems += [f"{seat}: not archived: {s}" for s in skipped]
    costs = seat_costs(store.engine, list(ws.seats), utcnow())
    return CloseResult(stopped, disabled, archives, costs, cancelled, problems, kept)


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
    for seat in owned_seats(accounts, ws):  # adopted accounts keep their own expiry
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
    own = set(owned_seats(accounts, ws))
    seats = []
    for s in store.seat_details(name):
        acct = accounts.get(s.username)
        seats.append(
            {
                "username": s.username,
                "display_name": s.display_name,
                "email": s.email,
                "adopted": s.username not in own,
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
