"""Which profiles can run on this machine, and why not (pure, with a probe)."""

from __future__ import annotations

import importlib.util
import os
import shutil
from collections.abc import Callable
from pathlib import Path

from .profiles import Catalog, Profile

# What a missing executable means to a user choosing a profile.
REQUIREMENT_HINTS = {
    "code-server": "code-server is not installed (make code-server)",
    "python:jupyter_remote_desktop_proxy": "jupyter-remote-desktop-proxy is not installed (make desktop)",
    "vncserver": "the desktop is not installed (make desktop: TigerVNC, XFCE, jupyter-remote-desktop-proxy)",
    "xfce4-session": "the XFCE desktop is not installed (make desktop)",
    "rserver": "RStudio Server (rserver) is not installed; it is not packaged for Debian. "
    "Use the rstudio image on Kubernetes",
}


def detect_gpus() -> int:
    """Count NVIDIA devices the way the driver exposes them."""
    return len(list(Path("/dev").glob("nvidia[0-9]*")))


def extra_search_path() -> str:
    """Directories besides PATH where `make` installs tools (code-server)."""
    prefix = os.environ.get("LENS_CODE_SERVER_PREFIX")
    return os.path.join(prefix, "node_modules", ".bin") if prefix else ""


def find_executable(name: str) -> str | None:
    path = os.environ.get("PATH", "")
    extra = extra_search_path()
    return shutil.which(name, path=f"{extra}{os.pathsep}{path}" if extra else path)


def module_installed(module: str) -> bool:
    """Whether the servers' Python (the hub's venv, locally) has ``module``."""
    return importlib.util.find_spec(module) is not None


def requirement_met(
    requirement: str, which: Callable[[str], str | None], importable: Callable[[str], bool] = module_installed
) -> bool:
    """An executable on PATH, or ``python:MODULE``: a module the servers' Python can import."""
    if requirement.startswith("python:"):
        return importable(requirement.removeprefix("python:"))
    return which(requirement) is not None


def unavailable_reason(
    profile: Profile,
    which: Callable[[str], str | None] = find_executable,
    gpu_count: int = 0,
    importable: Callable[[str], bool] = module_installed,
) -> str | None:
    for requirement in profile.requires:
        if not requirement_met(requirement, which, importable):
            return REQUIREMENT_HINTS.get(requirement, f"{requirement.removeprefix('python:')} is not installed")
    if profile.gpu_count > gpu_count:
        return f"needs {profile.gpu_count} GPU(s) ({profile.gpu_type}); this machine has {gpu_count}"
    return None


def local_unavailability(
    catalog: Catalog,
    which: Callable[[str], str | None] = find_executable,
    gpu_count: int | None = None,
    importable: Callable[[str], bool] = module_installed,
) -> dict[str, str]:
    gpus = detect_gpus() if gpu_count is None else gpu_count
    reasons = {p.slug: unavailable_reason(p, which, gpus, importable) for p in catalog.profiles}
    return {slug: reason for slug, reason in reasons.items() if reason}
