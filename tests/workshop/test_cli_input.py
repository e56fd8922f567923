"""`lens workshop prewarm` and `lens workshop share` on bad input: a clear message and exit
status 2 (argparse's usage error for a malformed option), never a traceback. No hub runs:
these are refused before one is needed, or say that it cannot be reached."""

from __future__ import annotations

import socket
from datetime import timedelta

import pytest

from jupyter_ext.cli.main import main
from jupyter_ext.hub.state import ensure_state
from jupyter_ext.workshop import model
from jupyter_ext.workshop.roster import Seat
from jupyter_ext.workshop.store import WorkshopStore


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def workshop_cli(tmp_path, monkeypatch, capsys):
    """Workshop 'bio' (seat bio-01, instructor teach, open a day more) in a fresh state directory;
    ``run(*args)`` -> (exit status, stderr) of `lens workshop --hub-url DEAD ARGS`."""
    monkeypatch.delenv("LENS_DEPLOYMENT", raising=False)
    monkeypatch.setenv("LENS_ADMIN_TOKEN", "tok")
    state = ensure_state(str(tmp_path / "state"))
    store = WorkshopStore.from_url(state.lens_db_url)
    store.save(model.Workshop(name="bio", expires_at=model.utcnow() + timedelta(days=1), profiles=("lab",),
                              instructors=("teach",)))
    store.add_seats("bio", [Seat("bio-01")])
    hub_url = f"http://127.0.0.1:{free_port()}"

    def run(*args: str) -> tuple[int, str]:
        try:
            status = main(["workshop", "--state", str(state.root), "--hub-url", hub_url, *args])
        except SystemExit as exc:  # argparse's usage error
            status = exc.code
        err = capsys.readouterr().err
        assert "Traceback" not in err, err
        return status, err

    run.state = state
    return run


def past(minutes: int) -> str:
    return f"{model.utcnow() - timedelta(minutes=minutes):%Y-%m-%dT%H:%M}"


@pytest.mark.parametrize("args, says", [
    (["prewarm", "nope"], "no workshop 'nope'"),
    (["prewarm", "../bio"], "no workshop '../bio'"),
    (["prewarm", "bio", "--starts", "tomorrow"], "--starts 'tomorrow': use YYYY-MM-DDTHH:MM"),
    (["prewarm", "bio", "--starts", "2026-12-24"], "give the time too"),
    (["prewarm", "bio", "--starts", "+-10m"], "--starts"),
    (["prewarm", "bio", "--starts", "+99999999999d"], "too far ahead"),  # was an OverflowError traceback
    (["prewarm", "bio", "--grace", "-5"], "argument --grace: '-5': minutes from 0 to 1440"),
    (["prewarm", "bio", "--grace", "30 fortnights"], "argument --grace"),
    (["prewarm", "bio", "--lead", "2d"], "argument --lead: '2d'"),
    (["prewarm", "bio", "--lead", "-1"], "argument --lead"),  # was accepted (checked on Kubernetes only)
    (["prewarm", "bio", "--profile", "gpu"], "--profile 'gpu' is not one of the workshop's: lab"),
    (["share", "nope", "--from", "teach"], "no workshop 'nope'"),
    (["share", "bio", "--from", "bio-01"], "'bio-01' is not an instructor of workshop 'bio'; its instructors: teach"),
    (["share", "bio", "--from", ""], "'' is not an instructor"),
])
def test_bad_input_is_refused_before_the_hub_is_asked(workshop_cli, args, says):
    status, err = workshop_cli(*args)
    assert status == 2 and says in err, err


def test_a_start_in_the_past_is_refused_and_one_moments_ago_is_taken(workshop_cli):
    status, err = workshop_cli("prewarm", "bio", "--starts", past(60))
    assert status == 2 and "is in the past" in err and "leave --starts out" in err, err
    # typed a minute late: taken; the hub is not there, and that is what it says (was a traceback)
    status, err = workshop_cli("prewarm", "bio", "--starts", past(1), "--grace", "1h")
    assert status == 2 and "hub unreachable" in err and "--hub-url" in err, err


def test_an_unreachable_hub_is_said_so(workshop_cli):
    from jupyter_ext.workshop.prewarm import read_holds

    for args in (["prewarm", "bio"], ["share", "bio", "--from", "teach"],
                 ["share", "bio", "--from", "teach", "--revoke"]):
        status, err = workshop_cli(*args)
        assert status == 2 and "hub unreachable" in err and "--hub-url" in err and "the hub refused" not in err, err
    assert read_holds(workshop_cli.state.root) == {}  # no seat held for a server never asked for


def test_create_with_prewarm_checks_starts_before_making_anything(workshop_cli):
    for starts, says in (("tomorrow", "--starts 'tomorrow'"), (past(60), "is in the past")):
        status, err = workshop_cli("create", "chem", "--seats", "2", "--expires", "+1d", "--prewarm",
                                   "--starts", starts)
        assert status == 2 and says in err, err
    assert WorkshopStore.from_url(workshop_cli.state.lens_db_url).get("chem") is None
