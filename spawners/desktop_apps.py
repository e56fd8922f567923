"""The desktop's applications: which are installed here, said in the profile's description.

Locally the desktop runs on the hub's machine, so the form says what a user will find
there (probed once per hub process and catalog file; installing an application then
shows at the next hub start). On Kubernetes the image decides and the catalog's own
description stands.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from .availability import find_executable
from .profiles import Catalog

# (what the form calls it, the program that shows it is there), in the order listed.
DESKTOP_APPLICATIONS: tuple[tuple[str, str], ...] = (
    ("Terminal", "xfce4-terminal"),
    ("Files (Thunar)", "thunar"),
    ("ncview (netCDF viewer)", "ncview"),
    ("QGIS", "qgis"),
    ("ParaView", "paraview"),
    ("Panoply", "panoply"),
)


def present_applications(which: Callable[[str], str | None] = find_executable) -> list[str]:
    return [label for label, program in DESKTOP_APPLICATIONS if which(program)]


def describe_desktop(description: str, applications: list[str]) -> str:
    listed = ", ".join(applications) if applications else "none of the usual ones (make desktop)"
    return f"{description.rstrip()} Applications here: {listed}."


def with_desktop_applications(
    catalog: Catalog, which: Callable[[str], str | None] = find_executable
) -> Catalog:
    """The catalog with each desktop profile's description listing what is installed."""
    if not any(p.interface == "desktop" for p in catalog.profiles):
        return catalog
    applications = present_applications(which)
    profiles = tuple(
        replace(p, description=describe_desktop(p.description, applications)) if p.interface == "desktop" else p
        for p in catalog.profiles
    )
    return replace(catalog, profiles=profiles)


_described: dict[int, tuple[Catalog, Catalog]] = {}


def local_catalog(catalog: Catalog) -> Catalog:
    """``with_desktop_applications`` once per loaded catalog (the form renders on every visit)."""
    hit = _described.get(id(catalog))
    if hit is None or hit[0] is not catalog:
        hit = (catalog, with_desktop_applications(catalog))
        _described.clear()  # one catalog file per hub: keep only the newest
        _described[id(catalog)] = hit
    return hit[1]
