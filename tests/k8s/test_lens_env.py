"""Every LENS_* variable the images (images/*/Dockerfile) and the chart (helm/:
values, templates, and the rendered chart) set is read somewhere in the Python
package sources (jupyter_ext/, spawners/, hub_config/), by its text: a setting
nothing reads is a setting an operator changes in vain."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.k8s.conftest import REPO
from tests.k8s.test_helm import VALUE_SETS, container, env_of
from tests.k8s.test_images import NAMES, dockerfile, instructions

NAME = re.compile(r"\bLENS_[A-Z0-9_]*[A-Z0-9]\b")
# A prefix in the sources (f"LENS_OIDC_{key.upper()}") reads the names it starts
# whose rest is a quoted key there too ("client_id"); "LENS_" alone
# (f"LENS_{key}_PORT") is too short to say which.
PREFIX = re.compile(r"\bLENS_[A-Z0-9_]+_(?=\{|\"|')")
SOURCES = ["jupyter_ext", "spawners", "hub_config"]
# A name nothing reads yet, with the reason; empty when every name is read.
NOT_READ_YET: dict[str, str] = {}


def strip_comment(line: str) -> str:
    """The part of a YAML, Dockerfile or Python line before a # comment."""
    return re.split(r"(?:^|\s)#", line, maxsplit=1)[0]


def names_in(text: str) -> set[str]:
    return {m for line in text.splitlines() for m in NAME.findall(strip_comment(line))}


def set_in_images() -> dict[str, set[str]]:
    where: dict[str, set[str]] = {}
    for name in NAMES:
        for word, rest in instructions(dockerfile(name)):
            if word in ("ENV", "ARG"):
                for var in NAME.findall(" ".join(re.findall(r"(\S+?)=", rest))):
                    where.setdefault(var, set()).add(f"images/{name}/Dockerfile")
    return where


def set_in_helm() -> dict[str, set[str]]:
    """Names in helm/'s values files and templates, outside comments."""
    where: dict[str, set[str]] = {}
    for path in sorted((REPO / "helm").rglob("*")):
        if path.suffix in (".yaml", ".yml", ".tpl") and "charts" not in path.relative_to(REPO / "helm").parts[2:3]:
            for var in names_in(path.read_text()):
                where.setdefault(var, set()).add(str(path.relative_to(REPO)))
    return where


def source_text() -> str:
    return "\n".join(p.read_text() for d in SOURCES for p in sorted((REPO / d).rglob("*.py")))


def unread(where: dict[str, set[str]]) -> dict[str, set[str]]:
    text = source_text()
    exact = set(NAME.findall(text))
    prefixes = set(PREFIX.findall(text))

    def built(name: str) -> bool:
        rests = [name[len(p):].lower() for p in prefixes if name.startswith(p)]
        return any(f'"{rest}"' in text or f"'{rest}'" in text for rest in rests)

    return {name: places for name, places in where.items() if name not in exact and not built(name)}


def check(where: dict[str, set[str]]) -> None:
    missing = {n: p for n, p in unread(where).items() if n not in NOT_READ_YET}
    assert not missing, "LENS_* names set but read nowhere in " + "/, ".join(SOURCES) + "/:\n" + "\n".join(
        f"  {name}: set in {', '.join(sorted(places))}" for name, places in sorted(missing.items())
    )


def test_the_scan_sees_what_it_should():
    assert {"LENS_HUB_CONFIG_DIR", "LENS_PROFILES"} <= set(set_in_images())
    helm = set_in_helm()
    assert {"LENS_DEPLOYMENT", "LENS_GATEWAY_TOKEN", "LENS_SCRATCH_BUCKET", "LENS_OIDC_CLIENT_ID"} <= set(helm)
    assert "LENS_OIDC_" not in helm  # comments ("the LENS_OIDC_* variables") set nothing
    # a name built from a prefix counts as read; an unknown one does not
    assert unread({"LENS_OIDC_CLIENT_ID": {"x"}, "LENS_OIDC_NO_SUCH_KEY": {"y"}, "LENS_NO_SUCH_SETTING": {"z"}}) == {
        "LENS_OIDC_NO_SUCH_KEY": {"y"}, "LENS_NO_SUCH_SETTING": {"z"}}


def test_lens_names_set_by_the_images_are_read():
    check(set_in_images())


def test_lens_names_set_in_helm_are_read():
    check(set_in_helm())


def test_not_read_yet_is_current():
    """An entry whose name is now read must leave NOT_READ_YET."""
    everything = set_in_images() | set_in_helm()
    stale = set(NOT_READ_YET) - set(unread(everything))
    assert not stale, f"now read; remove from NOT_READ_YET: {sorted(stale)}"


@pytest.mark.parametrize("value_set", VALUE_SETS)
def test_lens_names_in_the_rendered_chart_are_read(rendered_chart, value_set):
    """Every container's environment in the rendered chart (the subcharts' too)."""
    r = rendered_chart(value_set)
    where: dict[str, set[str]] = {}
    for obj in r.objects:
        spec = (obj.get("spec") or {}).get("template", {}).get("spec")
        for c in (spec or {}).get("containers", []) + (spec or {}).get("initContainers", []):
            for var in env_of(c):
                if NAME.fullmatch(var):
                    where.setdefault(var, set()).add(f"{obj['kind']}/{obj['metadata']['name']}")
    assert {"LENS_DEPLOYMENT", "LENS_GATEWAY_URL", "LENS_SCRATCH_BUCKET"} <= set(where)
    assert container(r.get("Deployment", "hub"), "hub")  # the hub is among them
    check(where)


def test_source_dirs_exist():
    for d in SOURCES:
        assert Path(REPO / d).is_dir(), d
