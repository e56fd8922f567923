"""The profile catalog: validation names file, profile and field; selection never falls back."""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from spawners.availability import local_unavailability, unavailable_reason
from spawners.form import render_form
from spawners.pricing import format_rate, hourly_rate
from spawners.profiles import (
    CatalogError,
    ProfileError,
    load_catalog,
    parse_catalog,
    parse_quantity,
    select_profile,
)

REPO = Path(__file__).resolve().parents[2]
CATALOG_PATH = REPO / "hub_config" / "profiles.yaml"
RAW = yaml.safe_load(CATALOG_PATH.read_text())


def test_shipped_catalog_has_the_four_environments():
    catalog = load_catalog(CATALOG_PATH)
    assert [p.slug for p in catalog.profiles] == ["lab", "rstudio", "vscode", "gpu", "desktop"]
    assert catalog.default_profile.slug == "lab"
    gpu = catalog.get("gpu")
    assert gpu.gpu_count == 1 and gpu.allowed_groups == ("gpu-users",)
    assert gpu.idle_timeout == 1800
    for p in catalog.profiles:
        assert p.image and p.memory.limit and p.cpu.limit and hourly_rate(p) is not None
    assert catalog.get("vscode").default_url == "/vscode/"
    assert catalog.get("rstudio").default_url == "/rstudio/"
    assert catalog.get("desktop").default_url == "/desktop/"


@pytest.mark.parametrize(
    ("mutate", "profile", "field"),
    [
        (lambda d: d["profiles"][0].update(memory={"guarantee": "8G", "limit": "4G"}), "lab", "memory"),
        (lambda d: d["profiles"][1].update(interface="emacs"), "rstudio", "interface"),
        (lambda d: d["profiles"][2].update(hourly_cost=-1), "vscode", "hourly_cost"),
        (lambda d: d["profiles"][3].update(gpu={"count": 1}), "gpu", "gpu"),
        (lambda d: d["profiles"][0].update(colour="red"), "lab", "colour"),
        (lambda d: d["profiles"][0].pop("image"), "lab", "image"),
        (lambda d: d["profiles"][1].update(slug="lab"), "lab", "slug"),
        (lambda d: d["profiles"][0].update(memory={"limit": "lots"}), "lab", "memory"),
        (lambda d: d["profiles"][0].update(idle_timeout="soon"), "lab", "idle_timeout"),
        (lambda d: d["profiles"][2].update(collaboration="no"), "vscode", "collaboration"),
    ],
)
def test_bad_catalog_names_file_profile_and_field(mutate, profile, field):
    data = copy.deepcopy(RAW)
    mutate(data)
    with pytest.raises(CatalogError) as info:
        parse_catalog(data, "profiles.yaml")
    err = info.value
    assert (err.source, err.profile, err.field) == ("profiles.yaml", profile, field)
    assert f"profile {profile!r}" in str(err) and f"field {field!r}" in str(err)


def test_collaboration_is_on_unless_a_profile_or_the_defaults_turn_it_off():
    data = copy.deepcopy(RAW)
    assert all(p.collaboration for p in parse_catalog(data).profiles)  # the default: on
    data["profiles"][2]["collaboration"] = False
    data["defaults"]["collaboration"] = True
    catalog = parse_catalog(data)
    assert catalog.get("vscode").collaboration is False and catalog.get("lab").collaboration is True
    data["defaults"]["collaboration"] = False
    data["profiles"][0]["collaboration"] = True
    catalog = parse_catalog(data)
    assert catalog.get("lab").collaboration is True and catalog.get("rstudio").collaboration is False


def test_bad_catalog_stops_the_hub_with_a_message(tmp_path):
    bad = tmp_path / "profiles.yaml"
    data = copy.deepcopy(RAW)
    data["profiles"][0]["cpu"] = {"limit": 0}
    bad.write_text(yaml.safe_dump(data))
    env = {"LENS_PROFILES": str(bad), "LENS_STATE_DIR": str(tmp_path / "state"), "PATH": "/usr/bin:/bin"}
    r = subprocess.run(
        [sys.executable, str(Path(sys.executable).parent / "jupyterhub"), "-f",
         str(REPO / "hub_config" / "jupyterhub_config.py"), "--show-config"],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60,
    )
    combined = r.stdout + r.stderr
    assert r.returncode != 0
    assert f"lens: cannot start the hub: {bad}: profile 'lab', field 'cpu'" in combined


def test_quantities():
    assert parse_quantity("4G") == 4 * 10**9
    assert parse_quantity("512Mi") == 512 * 2**20
    assert parse_quantity(1024) == 1024
    with pytest.raises(ValueError):
        parse_quantity("4 gigs")


def test_selection_rules():
    catalog = parse_catalog(RAW)
    assert select_profile(catalog, {}, []).slug == "lab"
    assert select_profile(catalog, {"profile": ["vscode"]}, []).slug == "vscode"
    with pytest.raises(ProfileError) as info:
        select_profile(catalog, {"profile": "nope"}, [])
    assert info.value.status == 400 and "Unknown profile 'nope'" in info.value.message
    with pytest.raises(ProfileError) as info:
        select_profile(catalog, {"profile": "gpu"}, ["students"])
    assert info.value.status == 403
    assert select_profile(catalog, {"profile": "gpu"}, ["gpu-users"]).slug == "gpu"
    assert select_profile(catalog, {"profile": "gpu"}, [], admin=True).slug == "gpu"
    with pytest.raises(ProfileError) as info:
        select_profile(catalog, {"profile": "rstudio"}, [], unavailable={"rstudio": "no rserver"})
    assert info.value.status == 400 and "no rserver" in info.value.message
    with pytest.raises(ProfileError):
        select_profile(catalog, {"profile": 7}, [])
    with pytest.raises(ProfileError, match="exactly one"):
        select_profile(catalog, {"profile": ["lab", "gpu"]}, [])


def test_availability_probe():
    catalog = parse_catalog(RAW)
    nothing = local_unavailability(catalog, which=lambda exe: None, gpu_count=0, importable=lambda m: False)
    assert set(nothing) == {"rstudio", "vscode", "desktop", "gpu"}
    assert "rserver" in nothing["rstudio"] and "GPU" in nothing["gpu"]
    assert "make desktop" in nothing["desktop"]
    everything = local_unavailability(catalog, which=lambda exe: f"/usr/bin/{exe}", gpu_count=1,
                                      importable=lambda m: True)
    assert everything == {}
    no_proxy = local_unavailability(catalog, which=lambda exe: f"/usr/bin/{exe}", gpu_count=1,
                                    importable=lambda m: m != "jupyter_remote_desktop_proxy")
    assert no_proxy == {"desktop": "jupyter-remote-desktop-proxy is not installed (make desktop)"}
    assert unavailable_reason(catalog.get("lab")) is None


def test_form_lists_prices_hides_forbidden_and_disables_unavailable():
    catalog = parse_catalog(RAW)
    rates = {p.slug: hourly_rate(p) for p in catalog.profiles}
    html = render_form(
        catalog, groups=[], admin=False, rates=rates, unavailable={"rstudio": "no <rserver>"},
        budget_note="Budget left: $12.00",
    )
    assert "$0.096/h" in html
    assert 'data-profile="gpu"' not in html  # limited to gpu-users
    assert 'value="rstudio" disabled' in html and "no &lt;rserver&gt;" in html
    assert 'value="lab" checked' in html
    assert "Budget left: $12.00" in html
    member = render_form(catalog, groups=["gpu-users"], admin=False, rates=rates, unavailable={})
    assert 'data-profile="gpu"' in member and "$1.006/h" in member
    assert format_rate(None) == "price unknown"


def test_idle_culler_uses_each_profiles_timeout(monkeypatch):
    from datetime import timedelta

    monkeypatch.setenv("LENS_PROFILES", str(CATALOG_PATH))
    namespace = {"get_config": lambda: type("C", (), {"IdleCuller": type("I", (), {})()})()}
    exec(compile((REPO / "hub_config" / "idle_culler_config.py").read_text(), "idle_culler_config.py", "exec"), namespace)
    arbiter = namespace["cull_by_profile"]
    gpu = {"user_options": {"profile": "gpu"}}
    lab = {"user_options": {"profile": "lab"}}
    assert arbiter(inactive=timedelta(seconds=1801), inactive_limit=3600, server=gpu)
    assert not arbiter(inactive=timedelta(seconds=1801), inactive_limit=3600, server=lab)
    assert arbiter(inactive=timedelta(seconds=3601), inactive_limit=3600, server={"user_options": {}})
