"""profile_options in the one catalog: validation, server-side choice checks,
the form's fields, and both spawners (kubespawner's semantics: tests/upstream)."""

from __future__ import annotations

import copy
import re
from types import SimpleNamespace

import pytest
import yaml
from tornado import web

from spawners.form import render_form
from spawners.profile_options import ChoiceError, resolve_options
from spawners.profiles import CatalogError, parse_catalog

OPTIONS = {
    "image": {
        "display_name": "Image",
        "choices": {
            "base": {"display_name": "Base", "kubespawner_override": {"image": "pangeo/base:1", "environment": {"FLAVOUR": "base"}}},
            "ml": {"display_name": "ML", "default": True, "kubespawner_override": {"image": "pangeo/ml:1", "mem_limit": "6G"}},
        },
        "unlisted_choice": {
            "enabled": True, "display_name": "Other image", "validation_regex": "^pangeo/[a-z-]+:[0-9.]+$",
            "validation_message": "Must be a pangeo image with a version",
            "kubespawner_override": {"image": "{value}", "environment": {"CUSTOM_IMAGE": "{value}"}},
        },
    }
}
RAW = {
    "profiles": [
        {"slug": "lab", "display_name": "Lab", "description": "d", "image": "img:1", "hourly_cost": 0.1,
         "default": True, "memory": {"limit": "2G"}, "profile_options": OPTIONS},
        {"slug": "plain", "display_name": "Plain", "description": "d", "image": "img:2", "hourly_cost": 0.1},
    ]
}


def catalog(raw=RAW):
    return parse_catalog(copy.deepcopy(raw), "profiles.yaml")


@pytest.mark.parametrize(
    ("option", "field"),
    [
        ({"display_name": "x"}, "profile_options.image"),  # neither choices nor unlisted
        ({"choices": {"a": {"colour": 1}}}, "profile_options.image.choices.a.colour"),
        ({"choices": {"a": {"default": True}, "b": {"default": True}}}, "profile_options.image.choices"),
        ({"unlisted_choice": {"enabled": True, "validation_regex": "("}}, "profile_options.image.unlisted_choice.validation_regex"),
        ({"choices": {"a": {"kubespawner_override": ["image"]}}}, "profile_options.image.choices.a.kubespawner_override"),
        ({"choices": ["a"]}, "profile_options.image.choices"),
    ],
)
def test_bad_options_name_the_profile_and_key(option, field):
    raw = copy.deepcopy(RAW)
    raw["profiles"][0]["profile_options"] = {"image": option}
    with pytest.raises(CatalogError) as err:
        parse_catalog(raw, "profiles.yaml")
    assert (err.value.profile, err.value.field) == ("lab", field)


def test_option_names_are_form_safe():
    raw = copy.deepcopy(RAW)
    raw["profiles"][0]["profile_options"] = {"bad name": OPTIONS["image"]}
    with pytest.raises(CatalogError, match="option names must match"):
        parse_catalog(raw)


def test_server_side_validation_of_choices():
    opts = catalog().get("lab").profile_options
    assert [v for _, v, _ in resolve_options(opts, {})] == ["ml"]
    chosen = resolve_options(opts, {"image--unlisted-choice": "pangeo/own:2"})
    assert chosen == [("image", "pangeo/own:2", {"image": "pangeo/own:2", "environment": {"CUSTOM_IMAGE": "pangeo/own:2"}})]
    for bad, message in [
        ({"image": "gpu"}, "has no choice 'gpu'; choices: base, ml"),
        ({"image--unlisted-choice": "pangeo/own"}, "Must be a pangeo image with a version"),
        ({"image--unlisted-choice": "pangeo/a:1\nx"}, "control characters"),
        ({"image": ["ml"]}, "must be a string"),
    ]:
        with pytest.raises(ChoiceError, match=re.escape(message)):
            resolve_options(opts, bad)


def test_form_has_kubespawners_field_names_and_a_pattern():
    html = render_form(catalog(), groups=[], admin=False, rates={}, unavailable={})
    assert 'name="profile-option-lab--image"' in html
    assert 'name="profile-option-lab--image--unlisted-choice"' in html
    assert '<option value="ml" selected>ML</option>' in html
    assert '<option value="unlisted-choice">Other...</option>' in html
    assert 'pattern="^pangeo/[a-z-]+:[0-9.]+$.*"' in html
    assert 'title="Must be a pangeo image with a version"' in html
    # an unavailable profile shows no option fields
    html = render_form(catalog(), groups=[], admin=False, rates={}, unavailable={"lab": "no"})
    assert "profile-option-lab" not in html


@pytest.fixture
def local_spawner(tmp_path):
    from spawners.local import LocalProfileSpawner

    path = tmp_path / "profiles.yaml"
    path.write_text(yaml.safe_dump(RAW))
    user = SimpleNamespace(name="alice", id=1, url="/user/alice/", groups=[], admin=False)
    return LocalProfileSpawner(user=user, profiles_path=str(path), budget_gate=False)


async def test_local_spawner_applies_options_it_can(local_spawner):
    await local_spawner._run_apply_user_options({"profile": "lab", "image": "base"})
    assert local_spawner.option_env == {"FLAVOUR": "base"}
    await local_spawner._run_apply_user_options({"profile": "lab"})
    assert local_spawner.mem_limit == 6 * 2**30 and local_spawner.option_env == {}
    await local_spawner._run_apply_user_options({"profile": "plain"})
    assert local_spawner.mem_limit is None and local_spawner.profile_choices == []


async def test_local_spawner_refuses_a_bad_choice_with_400(local_spawner):
    with pytest.raises(web.HTTPError) as err:
        await local_spawner._run_apply_user_options({"profile": "lab", "image--unlisted-choice": "evil/x:1"})
    assert err.value.status_code == 400
    assert "Must be a pangeo image" in err.value.log_message


def test_form_data_to_user_options(local_spawner):
    form = local_spawner.options_from_form
    assert form({"profile": ["lab"], "profile-option-lab--image": ["base"], "profile-option-plain--image": ["x"]}) == {
        "profile": "lab", "image": "base"}
    assert form({"profile": ["lab"], "profile-option-lab--image": ["unlisted-choice"],
                 "profile-option-lab--image--unlisted-choice": ["pangeo/own:1"]}) == {
        "profile": "lab", "image--unlisted-choice": "pangeo/own:1"}
    # the text field without choosing "Other..." is not a choice
    assert form({"profile": ["lab"], "profile-option-lab--image": ["ml"],
                 "profile-option-lab--image--unlisted-choice": ["pangeo/own:1"]}) == {"profile": "lab", "image": "ml"}


def test_unlisted_value_fills_only_value_fields():
    """kubespawner's recursive_format: other ``{fields}`` pass through, ``{{ }}`` escape
    (kubespawner tests/test_profile.py::test_unlisted_choice_non_string_override)."""
    from spawners.profile_options import format_value

    template = {
        "image": "{value}",
        "environment": {"USER": "${JUPYTER_USER}", "USER_TEST": "${{JUPYTER_USER}}", "IMG": "{value}"},
        "init_containers": [{"image": "{value}", "securityContext": {"runAsUser": 1000}}],
    }
    assert format_value(template, "pangeo/x:1") == {
        "image": "pangeo/x:1",
        "environment": {"USER": "${JUPYTER_USER}", "USER_TEST": "${JUPYTER_USER}", "IMG": "pangeo/x:1"},
        "init_containers": [{"image": "pangeo/x:1", "securityContext": {"runAsUser": 1000}}],
    }
    assert format_value("{value}", "{not-a-field}") == "{not-a-field}"
