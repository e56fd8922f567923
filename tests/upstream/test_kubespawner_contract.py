"""kubespawner's profile_list contract, on KubeSpawner and on KubeProfileSpawner.

Each test is written once in kubespawner's terms (a ``profile_list`` and
``user_options``) and run on the installed kubespawner's ``KubeSpawner``
(``flavour="upstream"``) and on lens's ``KubeProfileSpawner``
(``flavour="lens"``), which gets the same profiles as its catalog file.
Known differences: ``conftest.KNOWN_DIFFERENCES`` and docs/upstream.md.
"""

from __future__ import annotations

import importlib.metadata

import pytest
import yaml
from tornado.web import HTTPError
from traitlets.config import Config

from tests.k8s.conftest import HUB, make_user  # also points KUBECONFIG at a dummy

KUBESPAWNER_VERSION = "7.1.0"
# upstream refuses bad user_options with ValueError (a 500 in the hub); lens with a 400 HTTPError
REFUSED = (ValueError, HTTPError)
IMAGE = "quay.io/jupyterhub/singleuser:5"

pytestmark = pytest.mark.skipif(
    importlib.metadata.version("jupyterhub-kubespawner") != KUBESPAWNER_VERSION,
    reason=f"these contracts restate kubespawner {KUBESPAWNER_VERSION}'s behaviour; review them for "
    f"{importlib.metadata.version('jupyterhub-kubespawner')}",
)


def catalog_entry(entry: dict) -> dict:
    """A kubespawner profile_list entry as a lens catalog entry (lens's required fields filled)."""
    out = {
        "display_name": entry["display_name"],
        "description": entry.get("description") or entry["display_name"],
        "image": IMAGE,
        "hourly_cost": 0.0,
    }
    for key in ("slug", "default", "kubespawner_override", "profile_options"):
        if key in entry:
            out[key] = entry[key]
    return out


@pytest.fixture(params=["upstream", "lens"])
def flavour(request):
    return request.param


@pytest.fixture
def make(flavour, tmp_path, monkeypatch):
    """make(profile_list, **KubeSpawner config) -> a mock spawner of the flavour under test."""
    import kubernetes_asyncio.config
    from kubernetes_asyncio.config import kube_config

    from tests.k8s.conftest import DUMMY_KUBECONFIG

    for module in (kube_config, kubernetes_asyncio.config):
        monkeypatch.setattr(module, "KUBE_CONFIG_DEFAULT_LOCATION", str(DUMMY_KUBECONFIG))

    def build(profile_list, **traits):
        c = Config()
        c.KubeSpawner.image = IMAGE
        for name, value in traits.items():
            setattr(c.KubeSpawner, name, value)
        if flavour == "upstream":
            from kubespawner import KubeSpawner

            c.KubeSpawner.profile_list = profile_list
            cls = KubeSpawner
        else:
            from spawners.kube import KubeProfileSpawner

            path = tmp_path / "profiles.yaml"
            path.write_text(yaml.safe_dump({"profiles": [catalog_entry(e) for e in profile_list]}))
            c.KubeProfileSpawner.profiles_path = str(path)
            c.KubeProfileSpawner.budget_gate = False
            cls = KubeProfileSpawner
        return cls(_mock=True, config=c, user=make_user(), hub=HUB)

    return build


async def load(spawner, user_options: dict):
    spawner.user_options = user_options
    await spawner.load_user_options()
    return spawner


TWO = [
    {"slug": "small", "display_name": "Small", "kubespawner_override": {"image": "img/small:1"}},
    {"slug": "big", "display_name": "Big", "default": True, "kubespawner_override": {"image": "img/big:1", "cpu_limit": 4.0}},
]


# -- choosing a profile ----------------------------------------------------------------
async def test_default_profile_applies_without_options(make):
    assert (await load(make(TWO), {})).image == "img/big:1"


async def test_first_profile_is_the_default_when_none_is_marked(make):
    profiles = [{**p, "default": False} for p in TWO]
    assert (await load(make(profiles), {})).image == "img/small:1"


async def test_empty_profile_means_the_default(make):
    assert (await load(make(TWO), {"profile": ""})).image == "img/big:1"


async def test_profile_selected_by_slug(make):
    spawner = await load(make(TWO), {"profile": "small"})
    assert spawner.image == "img/small:1"


async def test_unknown_profile_is_refused(make):
    with pytest.raises(REFUSED, match="(?i)profile"):
        await load(make(TWO), {"profile": "huge"})


async def test_unknown_profile_is_a_value_error(make):
    with pytest.raises(ValueError):
        await load(make(TWO), {"profile": "huge"})


async def test_unrelated_user_options_are_ignored(make):
    assert (await load(make(TWO), {"profile": "small", "garbage-via-rest": "x"})).image == "img/small:1"


async def test_slug_generated_from_display_name(make):
    profiles = [{"display_name": "My Profile", "kubespawner_override": {"image": "img/mine:1"}}]
    assert (await load(make(profiles), {"profile": "my-profile"})).image == "img/mine:1"


# -- kubespawner_override semantics ------------------------------------------------------
async def test_scalar_override_replaces_the_configured_value(make):
    spawner = await load(make(TWO, cpu_limit=1.0), {"profile": "big"})
    assert spawner.cpu_limit == 4.0


async def test_dict_override_is_merged_with_the_configured_value(make):
    profiles = [{"slug": "p", "display_name": "P", "kubespawner_override": {"environment": {"B": "2"}}}]
    spawner = await load(make(profiles, environment={"A": "1"}), {})
    assert spawner.environment["A"] == "1" and spawner.environment["B"] == "2"


async def test_none_in_a_dict_override_deletes_the_configured_key(make):
    profiles = [{
        "slug": "p", "display_name": "P",
        "kubespawner_override": {"environment": {"X": None}, "node_selector": {"disk": None}},
    }]
    spawner = await load(make(profiles, environment={"X": "1", "Y": "2"}, node_selector={"disk": "ssd", "zone": "a"}), {})
    assert "X" not in spawner.environment and spawner.environment["Y"] == "2"
    assert spawner.node_selector == {"zone": "a"}


async def test_none_override_unsets_a_configured_trait(make):
    profiles = [{"slug": "p", "display_name": "P", "kubespawner_override": {"mem_limit": None}}]
    spawner = await load(make(profiles, mem_limit="2G"), {})
    assert spawner.mem_limit is None


async def test_configured_tolerations_are_kept(make):
    toleration = {"key": "hub.jupyter.org/dedicated", "operator": "Equal", "value": "user", "effect": "NoSchedule"}
    spawner = await load(make(TWO, tolerations=[toleration]), {})
    assert spawner.tolerations == [toleration]


async def test_configured_volumes_are_kept(make):
    volume = {"name": "extra", "emptyDir": {}}
    spawner = await load(make(TWO, volumes=[volume]), {})
    assert spawner.volumes == [volume]


async def test_callable_override_value(make):
    profiles = [{"slug": "p", "display_name": "P",
                 "kubespawner_override": {"image": lambda spawner: f"img/{spawner.user.name}:1"}}]
    assert (await load(make(profiles), {})).image == "img/alice:1"


async def test_profile_list_assigned_at_run_time_is_used(make):
    spawner = make(TWO)
    spawner.profile_list = [{"slug": "late", "display_name": "Late", "kubespawner_override": {"image": "img/late:1"}}]
    assert (await load(spawner, {"profile": "late"})).image == "img/late:1"


# -- profile_options -------------------------------------------------------------------------
IMAGE_OPTION = {
    "display_name": "Image",
    "choices": {
        "base": {"display_name": "Base", "kubespawner_override": {"image": "pangeo/base-notebook:2026.1"}},
        "ml": {"display_name": "ML", "default": True, "kubespawner_override": {"image": "pangeo/ml-notebook:2026.1"}},
    },
    "unlisted_choice": {
        "enabled": True,
        "display_name": "Other image",
        "validation_regex": "^pangeo/",
        "validation_message": "Must be a pangeo image",
        "kubespawner_override": {"image": "{value}"},
    },
}
WITH_OPTIONS = [{"slug": "opt", "display_name": "Options", "profile_options": {"image": IMAGE_OPTION}}]


async def test_option_default_choice(make):
    assert (await load(make(WITH_OPTIONS), {"profile": "opt"})).image == "pangeo/ml-notebook:2026.1"


async def test_option_first_choice_is_the_default_when_none_is_marked(make):
    option = {**IMAGE_OPTION, "choices": {k: {**v, "default": False} for k, v in IMAGE_OPTION["choices"].items()}}
    profiles = [{**WITH_OPTIONS[0], "profile_options": {"image": option}}]
    assert (await load(make(profiles), {"profile": "opt"})).image == "pangeo/base-notebook:2026.1"


async def test_option_choice_by_name(make):
    assert (await load(make(WITH_OPTIONS), {"profile": "opt", "image": "base"})).image == "pangeo/base-notebook:2026.1"


async def test_unlisted_choice_value_fills_the_override(make):
    spawner = await load(make(WITH_OPTIONS), {"profile": "opt", "image--unlisted-choice": "pangeo/pytorch:1"})
    assert spawner.image == "pangeo/pytorch:1"


async def test_unlisted_choice_wins_over_the_listed_value(make):
    options = {"profile": "opt", "image": "unlisted-choice", "image--unlisted-choice": "pangeo/pytorch:1"}
    assert (await load(make(WITH_OPTIONS), options)).image == "pangeo/pytorch:1"


async def test_unlisted_choice_failing_the_regex_is_refused(make):
    with pytest.raises(REFUSED):
        await load(make(WITH_OPTIONS), {"profile": "opt", "image--unlisted-choice": "evil/miner:1"})


async def test_unlisted_choice_not_enabled_is_refused(make):
    option = {**IMAGE_OPTION, "unlisted_choice": {"enabled": False}}
    profiles = [{**WITH_OPTIONS[0], "profile_options": {"image": option}}]
    with pytest.raises(REFUSED):
        await load(make(profiles), {"profile": "opt", "image--unlisted-choice": "pangeo/x:1"})


async def test_an_option_with_only_an_unlisted_choice_needs_a_value(make):
    option = {"display_name": "Image", "unlisted_choice": {"enabled": True, "kubespawner_override": {"image": "{value}"}}}
    profiles = [{**WITH_OPTIONS[0], "profile_options": {"image": option}}]
    with pytest.raises(REFUSED):
        await load(make(profiles), {"profile": "opt"})
    assert (await load(make(profiles), {"profile": "opt", "image--unlisted-choice": "x/y:1"})).image == "x/y:1"


@pytest.mark.parametrize(
    ("formdata", "image"),
    [
        ({"profile": ["opt"], "profile-option-opt--image": ["base"]}, "pangeo/base-notebook:2026.1"),
        ({"profile": ["opt"]}, "pangeo/ml-notebook:2026.1"),
        # kubespawner's form: the select says "unlisted-choice", the text field holds the value
        ({"profile": ["opt"], "profile-option-opt--image": ["unlisted-choice"],
          "profile-option-opt--image--unlisted-choice": ["pangeo/own:1"]}, "pangeo/own:1"),
    ],
)
async def test_form_data_becomes_the_same_choice(make, formdata, image):
    spawner = make(WITH_OPTIONS)
    options = spawner.options_from_form(formdata)
    assert (await load(spawner, options)).image == image


# -- what the server gets -----------------------------------------------------------------
async def test_container_env_is_jupyterhubs_and_the_configured_environment(make):
    from kubernetes_asyncio.client import ApiClient

    spawner = await load(make(TWO, environment={"A": "1"}), {})
    async with ApiClient() as api:
        pod = api.sanitize_for_serialization(await spawner.get_pod_manifest())
    (nb,) = [c for c in pod["spec"]["containers"] if c["name"] == "notebook"]
    extra = {e["name"] for e in nb["env"]} - {"A", "JUPYTER_IMAGE", "JUPYTER_IMAGE_SPEC"}
    assert all(name.startswith(("JUPYTERHUB_", "JPY_", "MEM_", "CPU_")) for name in extra), sorted(extra)


async def test_server_args_are_only_the_configured_ones(make):
    spawner = await load(make(TWO), {})
    assert spawner.get_args() == []


async def test_options_form_is_kubespawners_template(make):
    spawner = make(TWO)
    form = spawner.options_form
    if callable(form):
        form = await form(spawner)
    assert 'id="kubespawner-profiles-list"' in form


async def test_pod_manifest_carries_the_profile(make):
    from kubernetes_asyncio.client import ApiClient

    profiles = [{"slug": "p", "display_name": "P", "kubespawner_override": {
        "image": "img/p:1", "mem_limit": "3G", "node_selector": {"pool": "x"}, "environment": {"E": "v"},
    }}]
    spawner = await load(make(profiles), {})
    async with ApiClient() as api:
        pod = api.sanitize_for_serialization(await spawner.get_pod_manifest())
    (nb,) = [c for c in pod["spec"]["containers"] if c["name"] == "notebook"]
    assert nb["image"] == "img/p:1"
    assert int(nb["resources"]["limits"]["memory"]) == 3 * 2**30  # JupyterHub: G = 2**30
    assert pod["spec"]["nodeSelector"]["pool"] == "x"
    assert {"name": "E", "value": "v"} in nb["env"]


async def test_lens_profile_list_is_valid_upstream_input():
    """The profile_list lens generates from its catalog, given to kubespawner's own
    KubeSpawner, selects the same image, resources and option choices."""
    from kubespawner import KubeSpawner

    from spawners.kube_objects import PodLayout, profile_list
    from spawners.profiles import parse_catalog

    cat = parse_catalog({"profiles": [
        {**catalog_entry(WITH_OPTIONS[0]), "cpu": {"limit": 2}, "memory": {"limit": "4G"},
         "node_selector": {"pool": "user"}},
        catalog_entry(TWO[1]),
    ]})
    c = Config()
    c.KubeSpawner.profile_list = profile_list(cat, PodLayout())
    for options, image in [({"profile": "opt"}, "pangeo/ml-notebook:2026.1"),
                           ({"profile": "opt", "image": "base"}, "pangeo/base-notebook:2026.1"),
                           ({"profile": "opt", "image--unlisted-choice": "pangeo/x:1"}, "pangeo/x:1"),
                           ({"profile": "big"}, "img/big:1")]:
        spawner = KubeSpawner(_mock=True, config=c, user=make_user(), hub=HUB)
        await load(spawner, options)
        assert spawner.image == image
    spawner = await load(KubeSpawner(_mock=True, config=c, user=make_user(), hub=HUB), {"profile": "opt"})
    assert (spawner.cpu_limit, spawner.mem_limit, spawner.node_selector) == (2, 4_000_000_000, {"pool": "user"})
    with pytest.raises(ValueError):
        await load(KubeSpawner(_mock=True, config=c, user=make_user(), hub=HUB),
                   {"profile": "opt", "image--unlisted-choice": "evil/x:1"})
