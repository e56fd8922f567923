"""The magics against a real user server: kernel -> extension -> lens service."""

from __future__ import annotations

import pytest
from IPython.core.error import UsageError

from tests.integration.conftest import as_kernel_of

pytestmark = pytest.mark.integration



@pytest.fixture(scope="module")
def user_server(stack):
    name = "magic-user"
    token = stack.create_user(name, groups=["magic-lab"])
    stack.spawn(name, "lab")
    yield name, token
    stack.stop_server(name)


@pytest.fixture
def in_server(user_server, stack, monkeypatch):
    name, token = user_server
    as_kernel_of(monkeypatch, stack, name, token)
    return name


def test_costs_shows_categories_budget_and_forecast(ip, in_server, stack, monkeypatch):
    import jupyter_ext.kernel.magics.costs as costs_magic

    stack.lens("budgets", "set", f"user:{in_server}", "12.34")
    shown = []
    monkeypatch.setattr(costs_magic, "display", lambda *objs, **kw: shown.extend(objs))
    ip.run_line_magic("costs", "--no-plot")
    html = shown[0].data
    for category in ("servers", "dask", "jobs", "storage"):
        assert category in html
    # the figures, not only the labels: the budget the CLI set, and what is left of it
    assert f"user:{in_server}" in html and "Budget: $12.34" in html
    assert "remaining: $12.3" in html or "remaining: $12.2" in html  # minus the running server's minutes


def test_costs_group_needs_membership(ip, in_server, monkeypatch):
    import jupyter_ext.kernel.magics.costs as costs_magic

    monkeypatch.setattr(costs_magic, "display", lambda *objs, **kw: None)
    ip.run_line_magic("costs", "--group magic-lab --no-plot")
    with pytest.raises(UsageError, match="not a member"):
        ip.run_line_magic("costs", "--group someone-elses-lab --no-plot")


def test_magics_outside_a_server_say_so(ip, monkeypatch):
    monkeypatch.delenv("JUPYTERHUB_SERVICE_URL", raising=False)
    with pytest.raises(UsageError, match="not running in a lens user server"):
        ip.run_line_magic("costs", "")
    with pytest.raises(UsageError):
        ip.run_line_magic("costs", "--bogus-flag")
