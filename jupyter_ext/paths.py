"""Where lens finds its files, the same way in every process.

A configuration file comes from, in order: an explicit setting, its own
environment variable (``LENS_PROFILES``, ...), ``$LENS_HUB_CONFIG_DIR``, then the
default shipped in the ``hub_config`` package (package data of the wheel).
State lives in ``$LENS_STATE_DIR``, else ``./state``.

No dependencies beyond the standard library, so any process may import it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from importlib import resources
from pathlib import Path

# file name in hub_config/ -> the environment variable that points at an operator's copy
CONFIG_ENV = {
    "profiles.yaml": "LENS_PROFILES",
    "atom_apps.yaml": "LENS_ATOM_APPS",
    "catalog.yaml": "LENS_INTAKE_CATALOG",
    "jupyterhub_config.py": "LENS_HUB_CONFIG",
    "dask_gateway_config.py": "LENS_GATEWAY_CONFIG",
    "idle_culler_config.py": "LENS_CULLER_CONFIG",
}


def packaged_config_dir() -> Path:
    """The ``hub_config`` package: the defaults shipped with lens."""
    return Path(str(resources.files("hub_config")))


def config_file(name: str, explicit: str | os.PathLike | None = None,
                environ: Mapping[str, str] | None = None) -> Path:
    """Resolve a configuration file by its name in ``hub_config/``."""
    environ = os.environ if environ is None else environ
    if explicit:
        return Path(explicit)
    variable = CONFIG_ENV.get(name)
    if variable and environ.get(variable):
        return Path(environ[variable])
    directory = environ.get("LENS_HUB_CONFIG_DIR")
    if directory and (Path(directory) / name).exists():
        return Path(directory) / name
    return packaged_config_dir() / name


def state_dir(environ: Mapping[str, str] | None = None) -> Path:
    """The local state directory (databases, secrets, logs): ``$LENS_STATE_DIR`` or ``./state``."""
    environ = os.environ if environ is None else environ
    return Path(environ.get("LENS_STATE_DIR") or Path.cwd() / "state").absolute()
