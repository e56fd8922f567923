"""`lens atom ...` through the real dispatcher."""

from __future__ import annotations

import json

from jupyter_ext.cli.main import main


def test_apps_and_check(capsys):
    assert main(["atom", "apps"]) == 0
    out = capsys.readouterr().out
    assert "geos-chem-classic" in out and "gchp" in out and "MPI" in out
    assert main(["atom", "check-catalog"]) == 0


def test_estimate(capsys):
    spec = {"name": "w", "app": "wrf", "arch": "arm64"}
    assert main(["atom", "estimate", json.dumps(spec), "--json"]) == 0
    est = json.loads(capsys.readouterr().out)
    assert est["instance_type"].startswith("c7g.") and est["est_cost_micro"] > 0


def test_bad_spec_is_a_clean_error(capsys):
    assert main(["atom", "estimate", json.dumps({"name": "w", "arch": "vax", "command": ["x"]})]) == 2
    assert "arch: unknown architecture 'vax' (allowed: x86_64-amd" in capsys.readouterr().err
