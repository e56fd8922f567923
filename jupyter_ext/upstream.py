"""Where lens patches or leans on upstream internals, and for which version.

Every replacement of upstream code (a monkeypatch, an overridden method that
re-implements upstream's) and every call into an upstream private method is
listed in ``PATCHES`` with the version it was written for and the upstream
issue (or a note that none was found). At run time ``check(name, log)`` tells
whether the installed version is that one; each patch then skips itself or
warns (see ``Patch.on_other_version``). tests/upstream/test_patches.py fails
when an installed version no longer has what a patch relies on.

Standard library only: engines and spawners may import it.
"""

from __future__ import annotations

import importlib.metadata
import logging
from dataclasses import dataclass

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Patch:
    name: str
    distribution: str
    written_for: str  # a version or a release series ("6.1" matches 6.1.x)
    what: str
    issue: str  # upstream issue/PR URL, or "none found: ..."
    on_other_version: str  # "skip" (the patch is not applied) or "warn" (applied, logged)


PATCHES: dict[str, Patch] = {
    p.name: p
    for p in [
        Patch(
            "dask-gateway-server.setup_working_directory",
            "dask-gateway-server",
            "2026.3.0",
            "LensLocalBackend.setup_working_directory re-implements upstream's: upstream calls "
            "paths.extend(cert_path), so set_file_permissions chowns every one-letter path ('/' "
            "first) to the user; lens appends and refuses paths outside the working directory. "
            "Uses the private LocalBackend._get_tls_paths.",
            "none found in dask/dask-gateway's tracker (searched: setup_working_directory, chown, "
            "extend); to be reported upstream",
            "warn",
        ),
        Patch(
            "dask-gateway.client_del",
            "dask-gateway",
            "2026.3.0",
            "jupyter_ext.kernel.dask_client_fix replaces Gateway.__del__ so that a synchronous "
            "Gateway collected on its own event-loop thread does not deadlock.",
            "none found for this deadlock; related history: https://github.com/dask/dask-gateway/pull/162",
            "skip",
        ),
        Patch(
            "dask-gateway.cluster_widget",
            "dask-gateway",
            "2026.3.0",
            "jupyter_ext.kernel.dask_widget wraps the private GatewayCluster._widget_status, "
            "_widget and _repr_html_ to add the Cost row.",
            "none: a feature, not a bug (upstream has no hook for extra widget rows)",
            "skip",
        ),
        Patch(
            "dask-gateway.request",
            "dask-gateway",
            "2026.3.0",
            "jupyter_ext.gateway.metering and kernel.dask_widget call the private "
            "Gateway._request(method, url) for lens's own gateway route.",
            "none: upstream has no public call for extra routes",
            "warn",
        ),
        Patch(
            "tornado.websocket-get",
            "tornado",
            "6.6",
            "jupyter_ext.server.guests wraps WebSocketHandler.get (which every Jupyter websocket "
            "handler ends in) to remember websockets a guest of a shared server opens, so that a "
            "revoked share closes them.",
            "none: JupyterHub checks access per request, and a websocket is one request "
            "(no upstream hook re-checks open connections)",
            "skip",
        ),
        Patch(
            "jupyterhub.cached-hub-user",
            "jupyterhub",
            "6.1",
            "jupyter_ext.server.guests reads and clears the private handler._cached_hub_user that "
            "HubAuth._get_user keeps per request, to ask the hub again about an open websocket.",
            "none: a feature (re-checking long-lived connections), not a bug",
            "skip",
        ),
        Patch(
            "jupyterhub.group-share-tokens",
            "jupyterhub",
            "6.1",
            "jupyter_ext.hub.group_shares wraps jupyterhub.scopes.get_scopes_for (and the name "
            "apihandlers.base imported) so that a token also holds what its owner's groups' shares "
            "grant; upstream adds only the owner's user shares, so a server shared with a group "
            "refuses every member (all requests to a server are tokens). Uses the private "
            "scopes._intersect_expanded_scopes.",
            "none found in jupyterhub/jupyterhub's tracker (searched: group share token 403, "
            "shared_with_me APIToken); to be reported upstream",
            "skip",
        ),
        Patch(
            "jupyterhub.jupyterhub_message",
            "jupyterhub",
            "6.1",
            "spawners.errors.SpawnException adds jupyterhub_message / jupyterhub_html_message, "
            "which JupyterHub 6.1's form page reads (it does not read SpawnException.message).",
            "https://github.com/jupyterhub/jupyterhub/pull/5464 (SpawnException) and "
            "https://github.com/jupyterhub/jupyterhub/pull/2494 (jupyterhub_message); no issue found "
            "for the form page ignoring SpawnException.message",
            "warn",
        ),
        Patch(
            "jupyterhub.hub_auth_private",
            "jupyterhub",
            "6.1",
            "jupyter_ext.service.base warms HubAuth's user cache with get_user(handler, sync=False) "
            "and the private _persist_url_token_if_set.",
            "none: upstream has no public async prefetch",
            "warn",
        ),
        Patch(
            "kubespawner.apply_overrides",
            "jupyterhub-kubespawner",
            "7.1",
            "spawners.kube.KubeProfileSpawner applies catalog overrides with the private "
            "KubeSpawner._apply_overrides (dicts merged by recursive_update, None deletes, "
            "callables called).",
            "none: upstream has no public call to apply a kubespawner_override",
            "warn",
        ),
        Patch(
            "jupyterlab.yarn_config",
            "jupyterlab",
            "4.6",
            "jupyter_ext.server.singleuser replaces jupyterlab.commands._yarn_config (run by "
            "AppOptions._default_registry when labapp is imported: node yarn.js config, about half "
            "a CPU-second per server start) with the registry from the environment.",
            "none found: upstream runs it at import (labapp.py: app_version = get_app_version())",
            "skip",
        ),
        Patch(
            "rfc3987-syntax.deferred",
            "rfc3987-syntax",
            "1.1",
            "jupyter_ext.server.singleuser puts a stand-in rfc3987_syntax module in sys.modules whose "
            "is_valid_syntax (the one name jsonschema 4.26's _format imports) imports the real module "
            "on first call: its import compiles 17 lark grammars, about 0.9 CPU-seconds per server start "
            "(and 1.4-1.7 s of each hub start: jupyter_ext.hub.run_jupyterhub does the same).",
            "none found: jsonschema imports optional format checkers eagerly (jsonschema/_format.py)",
            "skip",
        ),
        Patch(
            "jupyter-server-proxy.entrypoint_servers",
            "jupyter-server-proxy",
            "4.6",
            "jupyter_ext.server.singleuser wraps jupyter_server_proxy.get_entrypoint_server_processes "
            "(as its _load_jupyter_server_extension looks it up) to leave out entry points whose "
            "program is not installed (no RStudio tile without rserver).",
            "none found: jupyter-server-proxy has no setting to drop entry-point servers",
            "skip",
        ),
        Patch(
            "dask-labextension.routes",
            "dask-labextension",
            "7.0.0",
            "jupyter_ext.server.dask_lab registers dask-labextension's routes (the patterns of its "
            "load_jupyter_server_extension) with stand-ins that import it on first use, and its "
            "server extension is off; jupyter_ext.server.dask_lab_gateway subclasses its three "
            "handlers, replacing the cluster handler's methods (clusters from the gateway, not "
            "in-process) and the dashboard proxy's target (the lens hop, with the server's token).",
            "https://github.com/dask/dask-labextension/issues/204 (clusters made outside the "
            "panel, e.g. by Dask Gateway, are not listed); none found for the import cost at start",
            "warn",
        ),
        Patch(
            "jupyter-server-proxy.rewrite_location",
            "jupyter-server-proxy",
            "4.6",
            "jupyter_ext.server.dask_lab_gateway.GatewayDashboardHandler overrides the private "
            "ProxyHandler._rewrite_location_header (and get_client_uri, proxy_request_headers): the "
            "dashboard's redirects point at the hub's own dashboard route, which must not get the "
            "/proxy/HOST:PORT prefix.",
            "none: upstream has no setting for a proxy target with a path prefix of its own",
            "warn",
        ),
    ]
}


def installed_version(distribution: str) -> str | None:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def version_matches(installed: str | None, written_for: str) -> bool:
    return installed is not None and (installed == written_for or installed.startswith(written_for + "."))


_warned: set[str] = set()


def check(name: str, logger: logging.Logger | None = None) -> bool:
    """True when the installed version is the one patch ``name`` was written for;
    otherwise log once (warning) what happens instead, and return False."""
    patch = PATCHES[name]
    installed = installed_version(patch.distribution)
    if version_matches(installed, patch.written_for):
        return True
    if name not in _warned:
        _warned.add(name)
        action = "not applied" if patch.on_other_version == "skip" else "applied anyway: review it"
        (logger or log).warning(
            "lens patch %s was written for %s %s, installed: %s; %s (%s)",
            name, patch.distribution, patch.written_for, installed, action, patch.issue,
        )
    return False
