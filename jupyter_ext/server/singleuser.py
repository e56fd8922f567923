"""``lens-singleuser``: jupyterhub-singleuser with lens's start-time fixes.

Every lens user server starts through here (the spawners' ``cmd``), so what a
class of 60 pays at each start is paid once here, not per import hook:

- JupyterLab runs ``node yarn.js config --json`` while importing its app
  (``AppOptions._default_registry``, for the npm registry of in-lab extension
  builds). That is half a CPU-second and seconds of wall time per start, for a
  value lens's servers never use: extensions ship prebuilt in the wheel, and
  nothing is built when a server starts. The registry is taken from the
  environment instead (``YARN_REGISTRY`` / ``npm_config_registry``, else yarn's
  default, which is what yarn would answer on an unconfigured machine).
- jsonschema (imported by jupyter_events at every server start) imports
  ``rfc3987_syntax`` for its "iri" format checks, which compiles 17 lark
  grammars on import: about 0.9 CPU-seconds per start, for a check no server
  start uses. A stand-in module defers that import to the first IRI check,
  which then behaves exactly as before.
- jupyter-server-proxy serves every installed ``jupyter_serverproxy_servers``
  entry point, with a launcher tile, even when its program is missing: RStudio
  on a machine without ``rserver`` is a tile whose click gives a 500. Entries
  whose program is not on PATH are left out (no route, no tile).
- The desktop (jupyter-remote-desktop-proxy) starts its XFCE session from lens's
  ``xstartup`` (the session bus ends with the X server: no dbus-daemon is left
  behind when the server stops), unless the deployment names its own.

The first three are version-checked patches (jupyter_ext/upstream.py): on another version
they are skipped with a warning and the server starts as upstream's would.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import logging
import os
import shutil
import sys
import types

from jupyter_ext.upstream import check

log = logging.getLogger("lens.singleuser")

# jupyter-remote-desktop-proxy's entry point, and what the desktop needs: TigerVNC's
# vncserver, the XFCE session and dbus-launch (desktop/xstartup).
DESKTOP_ENTRY = "desktop-websockify"
DESKTOP_PROGRAMS = ("vncserver", "xfce4-session", "dbus-launch")

# jupyter_serverproxy_servers entry point -> the programs it needs (any missing: no tile)
PROXIED_PROGRAMS = {
    "rstudio": ("rserver",),
    "rsession": ("rsession",),
    "vscode": ("code-server",),
    DESKTOP_ENTRY: DESKTOP_PROGRAMS,
}


def registry_from_environment(env=os.environ) -> str:
    return env.get("YARN_REGISTRY") or env.get("npm_config_registry") or "https://registry.yarnpkg.com"


def skip_yarn_config() -> bool:
    if not check("jupyterlab.yarn_config", log):
        return False
    import jupyterlab.commands as commands

    def yarn_config_from_environment(logger):
        return {"yarn config": {"registry": registry_from_environment()}, "npm config": {}}

    commands._yarn_config = yarn_config_from_environment
    return True


def defer_rfc3987_syntax() -> bool:
    """Put a stand-in for ``rfc3987_syntax`` in sys.modules that imports the real
    module on first use (see module docstring)."""
    if not check("rfc3987-syntax.deferred", log) or "rfc3987_syntax" in sys.modules:
        return False
    stub = types.ModuleType("rfc3987_syntax", "lens: rfc3987_syntax, imported on first use")
    stub.__spec__ = importlib.machinery.ModuleSpec("rfc3987_syntax", None)

    def real():
        if sys.modules.get("rfc3987_syntax") is stub:
            del sys.modules["rfc3987_syntax"]
        return importlib.import_module("rfc3987_syntax")

    def is_valid_syntax(*args, **kwargs):
        return real().is_valid_syntax(*args, **kwargs)

    def other_name(name):
        if name.startswith("__"):  # the import system probes __path__ etc.: not a use
            raise AttributeError(name)
        return getattr(real(), name)

    stub.is_valid_syntax = is_valid_syntax
    stub.__getattr__ = other_name
    sys.modules["rfc3987_syntax"] = stub
    return True


def available(name: str, path: str | None = None) -> bool:
    """Whether the program an entry point runs is installed (unknown entries: yes)."""
    programs = PROXIED_PROGRAMS.get(name)
    if name == "vscode" and os.environ.get("CODE_EXECUTABLE"):
        programs = (os.environ["CODE_EXECUTABLE"],)
    return programs is None or all(shutil.which(p, path=path) for p in programs)


def drop_missing_proxied_apps() -> bool:
    if not check("jupyter-server-proxy.entrypoint_servers", log):
        return False
    import jupyter_server_proxy

    upstream_list = jupyter_server_proxy.get_entrypoint_server_processes

    def installed_server_processes():
        processes = upstream_list()
        kept = [p for p in processes if available(p.name)]
        for p in processes:
            if p not in kept:
                log.info("lens: %s is not installed here: no launcher tile and no /%s/ route", p.name, p.name)
        return kept

    jupyter_server_proxy.get_entrypoint_server_processes = installed_server_processes
    return True


XSTARTUP = os.path.join(os.path.dirname(os.path.abspath(__file__)), "desktop", "xstartup")


def use_lens_xstartup(env=os.environ) -> None:
    """The desktop's session script, unless the deployment names its own."""
    env.setdefault("JUPYTER_REMOTE_DESKTOP_PROXY_XSTARTUP", XSTARTUP)


def main():
    defer_rfc3987_syntax()
    skip_yarn_config()
    drop_missing_proxied_apps()
    use_lens_xstartup()
    from jupyterhub.singleuser import main as singleuser_main

    return singleuser_main()


if __name__ == "__main__":
    sys.exit(main())
