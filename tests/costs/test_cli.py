"""`lens budgets` and `lens costs` admin commands, through the real dispatcher."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from jupyter_ext.cli.main import main

ROOT = Path(__file__).resolve().parents[2]


def run(args, capsys):
    rc = main(args)
    out = capsys.readouterr()
    return rc, out.out, out.err


def test_budgets_set_show_override_remove(db_url, capsys):
    rc, out, _ = run(["budgets", "set", "user:alice", "25.50", "--db", db_url], capsys)
    assert rc == 0 and "$25.50 monthly" in out
    rc, out, _ = run(["budgets", "set", "group:ess101", "300", "--period", "window", "--start",
                      "2026-09-01", "--end", "2026-12-20", "--thresholds", "75,100", "--db", db_url], capsys)
    assert rc == 0 and "window 2026-09-01 00:00 .. 2026-12-20 00:00 UTC" in out and "75,100%" in out
    rc, out, _ = run(["budgets", "show", "--db", db_url, "--json"], capsys)
    data = {d["account"]: d for d in json.loads(out)}
    assert data["user:alice"]["budget_micro"] == 25_500_000
    assert data["user:alice"]["available_micro"] == 25_500_000
    rc, out, _ = run(["budgets", "override", "user:alice", "--by", "root", "--until",
                      "2099-01-01", "--reason", "thesis", "--db", db_url], capsys)
    assert rc == 0 and "until 2099-01-01 00:00 UTC (by root)" in out
    rc, out, _ = run(["budgets", "show", "user:alice", "--db", db_url, "--verify"], capsys)
    assert rc == 0 and "override" in out and "ledger verify: ok" in out
    assert run(["budgets", "override", "user:alice", "--clear", "--db", db_url], capsys)[0] == 0
    assert run(["budgets", "remove", "user:alice", "--db", db_url], capsys)[0] == 0
    rc, _, err = run(["budgets", "remove", "user:alice", "--db", db_url], capsys)
    assert rc == 2 and "has no budget" in err


def test_budget_errors_name_the_field(db_url, capsys):
    cases = [
        (["budgets", "set", "alice", "10"], "account: 'alice'"),
        (["budgets", "set", "user:a", "ten"], "AMOUNT_USD: 'ten' is not a decimal"),
        (["budgets", "set", "user:a", "10", "--period", "window"], "needs both"),
        (["budgets", "set", "user:a", "10", "--start", "2026-01-01"], "only a 'window' budget"),
        (["budgets", "set", "user:a", "10", "--thresholds", "x"], "--thresholds: 'x' must be comma-separated whole percentages"),
        (["budgets", "override", "user:nobody", "--by", "root"], "no budget to override"),
        (["budgets", "override", "user:nobody"], "--by"),
    ]
    for args, match in cases:
        rc, _, err = run([*args, "--db", db_url], capsys)
        assert rc == 2 and match in err, (args, err)


def test_costs_report_export_metrics(ledger, db_url, capsys):
    ledger.set_budget("user:ann", 10_000_000)
    ledger.record(["user:ann", "group:lab"], 2_500_000, "jobs", "job-1")
    rc, out, _ = run(["costs", "report", "user:ann", "--db", db_url], capsys)
    assert rc == 0 and "$2.50" in out and "$7.50" in out and "burn" in out
    rc, out, _ = run(["costs", "report", "user:ann", "--db", db_url, "--json"], capsys)
    assert json.loads(out)["by_category"]["jobs"] == 2_500_000
    rc, out, _ = run(["costs", "export", "--table", "groups", "--db", db_url], capsys)
    assert rc == 0 and out.splitlines()[0].startswith("account,name,servers_usd")
    assert "group:lab,lab,0.000000,0.000000,2.500000" in out
    rc, out, _ = run(["costs", "metrics", "--db", db_url], capsys)
    assert 'lens_cost_spent_usd{account="user:ann"' in out
    rc, _, err = run(["costs", "report", "bogus", "--db", db_url], capsys)
    assert rc == 2 and "account: 'bogus'" in err


def test_console_script_entry(db_url):
    env_py = sys.executable
    proc = subprocess.run([env_py, "-c", "import sys; from jupyter_ext.cli.main import main; "
                           "sys.exit(main(sys.argv[1:]))", "budgets", "set", "hub", "1000",
                           "--db", db_url], cwd=ROOT, capture_output=True, text=True, timeout=60,
                          env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stderr
    assert "budget hub: $1,000.00 monthly" in proc.stdout
