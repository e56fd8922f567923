"""Job spec, app catalog and estimates: pure functions."""

from __future__ import annotations

from decimal import Decimal

import pytest
import yaml

from jupyter_ext.atom.catalog import parse_catalog
from jupyter_ext.atom.errors import SpecError
from jupyter_ext.atom.estimate import actual_cost, estimate
from jupyter_ext.atom.rates import instance_types, node_rate_micro
from jupyter_ext.atom.spec import job_env, job_tags, parse_memory, parse_spec, parse_walltime
from jupyter_ext.costs.catalog import PriceCatalog, packaged_snapshot, process_catalog
from jupyter_ext.paths import packaged_config_dir


def test_full_spec_round_trips(catalog):
    data = {
        "name": "ens-1", "app": "geos-chem-classic", "version": "14.3.1", "arch": "arm64",
        "vcpus": 8, "memory": "16Gi", "gpus": 0, "nodes": 1, "walltime": "02:30:00",
        "spot": True, "array": {"size": 3, "params": [{"X": "1"}, {"X": "2"}, {"X": "3"}],
                                "parallel": 2},
        "depends_on": ["j-0123456789ab", {"id": "j-0123456789ac", "type": "afterany"}],
        "inputs": ["s3://bucket/in/a.nc", "/data/b.nc"], "outputs": "s3://bucket/out/",
        "env": {"OMP_NUM_THREADS": "8"}, "tags": {"project": "aq"}, "project": "lab",
        "backend": "batch",
    }
    spec = parse_spec(data, catalog)
    assert spec.memory_mib == 16384 and spec.walltime_s == 9000 and spec.array_size == 3
    assert spec.depends_on[1].type == "afterany" and spec.command == ("gcclassic",)
    assert parse_spec(spec.to_dict(), catalog) == spec


def test_app_defaults_scale_walltime_per_arch(catalog):
    amd = parse_spec({"name": "g", "app": "geos-chem-classic"}, catalog)
    arm = parse_spec({"name": "g", "app": "geos-chem-classic", "arch": "arm64"}, catalog)
    assert amd.vcpus == 16 and amd.memory_mib == 32 * 1024 and amd.walltime_s == 6 * 3600
    assert arm.walltime_s == round(6 * 3600 * 1.15)
    gchp = parse_spec({"name": "g", "app": "gchp"}, catalog)
    assert gchp.nodes == 2 and gchp.mpi


@pytest.mark.parametrize("data,field,allowed", [
    ({"arch": "sparc"}, "arch", "x86_64-amd, x86_64-intel, arm64"),
    ({"app": "nope"}, "app", "container, gchp, geos-chem-classic, wrf"),
    ({"app": "wrf", "version": "1.0"}, "version", "4.6.1, 4.5.2"),
    ({"vcpus": 0}, "vcpus", "1..4096"),
    ({"memory": "lots"}, "memory", "'512Mi'"),
    ({"memory": "9" * 400}, "memory", "'4Gi'"),
    ({"memory": "4GB"}, "memory", "'4G' (10^9 bytes)"),
    ({"memory": "8Ti"}, "memory", "1..4194304"),
    ({"walltime": "forever"}, "walltime", "HH:MM:SS"),
    ({"array": 0}, "array.size", "1..10000"),
    ({"nodes": 2, "array": 4}, "array", "nodes=1"),
    ({"depends_on": ["afterwards:j-0123456789ab"]}, "depends_on.type", "afterok, afterany"),
    ({"inputs": ["relative/path"]}, "inputs", "s3://"),
    ({"colour": "red"}, "colour", "name, app"),
    ({"image": "x", "app": "wrf"}, "image", "app | image"),
    ({"script": "echo hi"}, "script", "command | script"),
])
def test_invalid_specs_name_field_and_allowed_values(catalog, data, field, allowed):
    with pytest.raises(SpecError) as err:
        parse_spec({"name": "n", "command": ["true"], **data}, catalog)
    assert err.value.field == field
    assert allowed in str(err.value)


def test_command_or_app_required():
    with pytest.raises(SpecError, match="^command: "):
        parse_spec({"name": "n"})


def test_units():
    assert parse_memory("1.5Gi") == 1536 and parse_memory(100) == 100
    assert parse_walltime("1-00:00:00") == 86400 and parse_walltime("90m") == 5400
    assert parse_walltime("05:00") == 300 and parse_walltime(42) == 42


def test_memory_is_a_kubernetes_quantity(catalog):
    """'4G' is 10^9 bytes as in profiles.yaml and pods; 'Gi' is GiB; a bare number is MiB."""
    assert parse_memory("4Gi") == 4096 and parse_memory("512Mi") == 512
    assert parse_memory("4G") == -(-4 * 10**9 // 2**20) == 3815  # rounded up to a whole MiB
    assert parse_memory("1M") == 1 and parse_memory("2048") == 2048 == parse_memory(2048)
    spec = parse_spec({"name": "m", "command": ["x"], "memory": "4G"}, catalog)
    again = parse_spec(spec.to_dict(), catalog)
    assert again.memory_mib == spec.memory_mib == 3815  # the stored form reads back the same
    # the shipped app defaults are GiB, as they always meant
    assert catalog.get("geos-chem-classic").defaults_for("x86_64-amd")["memory"] == 32 * 1024


def test_shipped_catalog_is_valid_and_complete(catalog):
    assert {"geos-chem-classic", "gchp", "wrf", "container"} <= set(catalog.names())
    for app in catalog.apps.values():
        assert set(app.archs) == {"x86_64-amd", "x86_64-intel", "arm64"}
        for fams in app.instance_families.values():
            assert any(it.split(".")[0] in fams for it in instance_types(process_catalog()))


@pytest.mark.parametrize("mutate,field", [
    (lambda a: a.pop("versions"), "apps.wrf.versions"),
    (lambda a: a["images"].update({"riscv": "x"}), "apps.wrf.images.riscv"),
    (lambda a: a["runtime_scale"].pop("arm64"), "apps.wrf.runtime_scale"),
    (lambda a: a["runtime_scale"].update({"arm64": 0}), "apps.wrf.runtime_scale.arm64"),
    (lambda a: a["defaults"].update({"walltime": "soon"}), "apps.wrf.defaults.walltime"),
    (lambda a: a.update({"colour": 1}), "apps.wrf.colour"),
])
def test_catalog_is_validated_at_load(mutate, field):
    with open(packaged_config_dir() / "atom_apps.yaml") as f:
        data = yaml.safe_load(f)
    mutate(data["apps"]["wrf"])
    with pytest.raises(SpecError) as err:
        parse_catalog(data)
    assert err.value.field == field


def test_estimate_picks_cheapest_fitting_instance_and_prices_the_worst_case(catalog):
    spec = parse_spec({"name": "e", "command": ["x"], "vcpus": 6, "memory": "10Gi",
                       "walltime": "02:00:00", "array": 10}, catalog)
    est = estimate(spec, catalog)
    assert est["instance_type"] == "c6a.2xlarge"  # 8 vCPU / 16 GiB is the cheapest fit
    region = packaged_snapshot()["regions"]["us-east-1"]
    rate = node_rate_micro(process_catalog(), "c6a.2xlarge", False)
    assert est["hourly_rate_micro"] == rate
    assert rate == int(Decimal(region["ec2"]["c6a.2xlarge"]["ondemand_hour"]) * 1_000_000)
    assert est["est_cost_micro"] == 2 * 10 * rate
    spot = estimate(parse_spec({**spec.to_dict(), "spot": True}, catalog), catalog)
    spot_price = Decimal(region["spot"]["c6a.2xlarge"]["price_hour"])
    assert spot["hourly_rate_micro"] == int(spot_price * 1_000_000) < rate
    assert spot["snapshot"]["date"] == packaged_snapshot()["date"]


def test_expected_cost_uses_reference_runtime_times_arch_scale(catalog):
    arm = parse_spec({"name": "g", "app": "wrf", "arch": "arm64", "walltime": "10:00:00"},
                     catalog)
    est = estimate(arm, catalog)
    assert est["runtime_scale"] == 1.25
    assert est["expected_cost_micro"] == -(-int(2 * 3600 * 1.25) * est["hourly_rate_micro"] // 3600)


def test_estimate_refuses_impossible_nodes(catalog):
    spec = parse_spec({"name": "big", "command": ["x"], "vcpus": 4000}, catalog)
    with pytest.raises(SpecError, match="^vcpus: .*use more nodes"):
        estimate(spec, catalog)


def test_actual_cost_is_integer_runtime_x_nodes_x_rate():
    assert actual_cost(3600, 4, 1_000_000) == 4_000_000
    assert actual_cost(1, 1, 3599) == 1  # rounds up to a whole micro-dollar
    assert isinstance(actual_cost(12.6, 2, 306_000), int)


def test_estimate_with_another_price_source(catalog):
    """A snapshot may not price every type: unpriced types are not candidates."""
    snap = packaged_snapshot()
    snap["date"] = "2026-11-20"
    ec2 = snap["regions"]["us-east-1"]["ec2"]
    snap["regions"]["us-east-1"]["ec2"] = {"m6a.large": {**ec2["m6a.large"], "ondemand_hour": "1"}}
    spec = parse_spec({"name": "e", "command": ["x"], "vcpus": 2, "memory": "1Gi"}, catalog)
    est = estimate(spec, catalog, PriceCatalog(snap, "test"))
    assert est["instance_type"] == "m6a.large" and est["hourly_rate_micro"] == 1_000_000
    assert est["snapshot"]["date"] == "2026-11-20"


def test_lens_tags_win_over_a_user_tag_named_project(catalog):
    """Finding 8: a user tag `project` must not redirect the lens:project cost tag."""
    spec = parse_spec({"name": "t", "command": ["true"], "project": "lab",
                       "tags": {"project": "someone-elses-grant", "team": "aq"}}, catalog)
    tags = job_tags(spec.tags_dict, user="alice", project=spec.project, job_id="j-0123456789ab")
    assert tags["lens:project"] == "lab" and tags["lens:group"] == "lab"
    assert tags["project"] == "someone-elses-grant" and tags["team"] == "aq"
    assert tags["lens:user"] == "alice" and tags["lens:job"] == "j-0123456789ab"
    # even tags that never went through parse_spec cannot override lens's own
    forged = job_tags({"lens:user": "bob", "lens:project": "x", "aws:foo": "y"},
                      user="alice", project=None, job_id="j-0123456789ab")
    assert forged == {"lens:user": "alice", "lens:group": "none", "lens:project": "none",
                      "lens:job": "j-0123456789ab"}
    with pytest.raises(SpecError, match="reserved"):
        parse_spec({"name": "t", "command": ["true"], "tags": {"lens:project": "x"}}, catalog)


def test_lens_env_wins_over_user_env(catalog):
    spec = parse_spec({"name": "t", "command": ["true"], "env": {"A": "1"}}, catalog)
    forged = spec.__class__(**{**spec.__dict__, "env": (("A", "1"), ("LENS_JOB_ID", "x"),
                                                        ("HOME", "/root"))})
    env = job_env(forged, "j-0123456789ab")
    assert env["LENS_JOB_ID"] == "j-0123456789ab" and env["A"] == "1" and "HOME" not in env
