"""Each lens patch of an upstream package, and each call into an upstream private
method, checked against the installed version (jupyter_ext.upstream.PATCHES).

These fail when an upgrade changes what a patch relies on (or fixes the bug it
works around): then review the patch, its version and its issue link.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import os

import pytest

from jupyter_ext import upstream
from jupyter_ext.upstream import PATCHES, installed_version, version_matches


@pytest.mark.parametrize("name", sorted(PATCHES))
def test_every_patch_names_its_version_and_upstream_issue(name):
    patch = PATCHES[name]
    assert patch.issue.startswith(("https://github.com/", "none"))
    assert patch.on_other_version in {"skip", "warn"}
    assert version_matches(installed_version(patch.distribution), patch.written_for), (
        f"{name} was written for {patch.distribution} {patch.written_for}, installed "
        f"{installed_version(patch.distribution)}: review it (jupyter_ext/upstream.py)"
    )


def test_check_warns_once_on_another_version(monkeypatch, caplog):
    monkeypatch.setattr(upstream, "installed_version", lambda dist: "9999.1.0")
    monkeypatch.setattr(upstream, "_warned", set())
    with caplog.at_level(logging.WARNING):
        assert upstream.check("dask-gateway.client_del") is False
        assert upstream.check("dask-gateway.client_del") is False
    messages = [r.getMessage() for r in caplog.records if "dask-gateway.client_del" in r.getMessage()]
    assert len(messages) == 1 and "not applied" in messages[0] and "9999.1.0" in messages[0]


def test_version_matching():
    assert version_matches("6.1.1", "6.1") and version_matches("2026.3.0", "2026.3.0")
    assert not version_matches("6.10.0", "6.1") and not version_matches(None, "6.1")


# -- dask-gateway-server: LocalBackend.setup_working_directory ---------------------------
class _Cluster:
    def __init__(self, name):
        self.name, self.username = name, "alice"
        self.tls_cert, self.tls_key = b"cert", b"key"


def _chowned(backend_base, tmp_path):
    """The paths a backend hands to set_file_permissions for a new working directory."""
    seen = []

    class Recording(backend_base):
        def set_file_permissions(self, paths, username):
            seen.extend(paths)

        def check_user(self, username):  # lens: no unix account needed for this
            return None

    backend = Recording(clusters_directory=str(tmp_path))
    Recording.setup_working_directory(backend, _Cluster("c1"))
    return seen


def test_upstream_setup_working_directory_still_has_the_bug_lens_fixes(tmp_path):
    from dask_gateway_server.backends.local import UnsafeLocalBackend

    seen = _chowned(UnsafeLocalBackend, tmp_path)
    # upstream 2026.3.0: paths.extend(cert_path) adds every character, "/" first
    assert "/" in seen, "upstream fixed setup_working_directory: drop LensLocalBackend's copy"


def test_lens_setup_working_directory_chowns_only_inside_the_workdir(tmp_path):
    from jupyter_ext.gateway.backend import LensLocalBackend

    seen = _chowned(LensLocalBackend, tmp_path)
    workdir = tmp_path / "c1"
    assert seen and all(os.path.realpath(p).startswith(str(workdir)) for p in seen)
    assert {os.path.basename(p) for p in seen} >= {"c1", "dask.crt", "dask.pem"}


def test_private_tls_paths_helper_is_still_there(tmp_path):
    from dask_gateway_server.backends.local import LocalBackend

    assert list(inspect.signature(LocalBackend._get_tls_paths).parameters) == ["self", "workdir"]
    cert, key = LocalBackend._get_tls_paths(LocalBackend.__new__(LocalBackend), str(tmp_path))
    assert os.path.dirname(cert) == os.path.dirname(key) != str(tmp_path)


# -- dask-gateway (client) --------------------------------------------------------------
def test_gateway_del_and_request_are_what_the_patches_expect():
    from dask_gateway.client import Gateway, GatewayCluster

    from jupyter_ext.kernel import dask_client_fix

    assert dask_client_fix.install() is True
    assert Gateway.__del__.__module__ == "jupyter_ext.kernel.dask_client_fix"
    assert list(inspect.signature(Gateway._request).parameters) == ["self", "method", "url", "json"]
    assert inspect.iscoroutinefunction(Gateway._request)
    for name in ("_widget_status", "_widget", "_repr_html_"):
        assert list(inspect.signature(getattr(GatewayCluster, name)).parameters) == ["self"], name


def test_client_fix_is_not_installed_on_another_version(monkeypatch):
    from jupyter_ext.kernel import dask_client_fix

    monkeypatch.setattr(dask_client_fix, "_INSTALLED", False)
    monkeypatch.setattr(upstream, "installed_version", lambda dist: "2099.1.0")
    assert dask_client_fix.install() is False


def test_widget_is_not_patched_on_another_version(monkeypatch):
    import types

    from jupyter_ext.kernel import dask_widget

    class GatewayCluster:  # the attributes are there, the version is not the one
        def _widget_status(self): ...
        def _widget(self): ...
        def _repr_html_(self): ...

    monkeypatch.setattr(upstream, "installed_version", lambda dist: "2099.1.0")
    assert dask_widget.install(types.SimpleNamespace(GatewayCluster=GatewayCluster)) is False
    assert not getattr(GatewayCluster, "_lens_cost_patched", False)


# -- JupyterHub ------------------------------------------------------------------------------
def test_jupyterhub_shows_jupyterhub_message():
    from jupyterhub.utils import format_exception

    from spawners.errors import SpawnException

    exc = SpawnException("Budget exhausted.", reason="budget", status_code=403)
    assert format_exception(exc) == ("Budget exhausted.", "Budget exhausted.")


def test_hub_auth_private_calls_exist():
    from jupyterhub.services.auth import HubAuth

    assert list(inspect.signature(HubAuth._persist_url_token_if_set).parameters) == ["self", "handler"]
    get_user = inspect.signature(HubAuth.get_user).parameters
    assert "sync" in get_user and get_user["sync"].kind is inspect.Parameter.KEYWORD_ONLY


# -- kubespawner: _apply_overrides -------------------------------------------------------------
def test_kubespawner_apply_overrides_behaves_as_lens_expects():
    from types import SimpleNamespace

    from kubespawner import KubeSpawner

    assert list(inspect.signature(KubeSpawner._apply_overrides).parameters) == ["self", "spawner_override"]
    target = SimpleNamespace(
        environment={"A": "1", "X": "2"}, node_selector={"disk": "ssd"}, mem_limit=2**30, image="a",
        log=logging.getLogger("test"), user=SimpleNamespace(name="alice"),
    )
    KubeSpawner._apply_overrides(target, {
        "environment": {"X": None, "B": "3"},  # dicts merge, None deletes
        "node_selector": {"disk": None},
        "mem_limit": None,  # a None value is set
        "image": lambda spawner: f"img/{spawner.user.name}",  # callables are called
    })
    assert target.environment == {"A": "1", "B": "3"}
    assert target.node_selector == {} and target.mem_limit is None and target.image == "img/alice"


# -- dask-labextension: its routes, served by lens ----------------------------------------
def test_lens_serves_dask_labextensions_own_routes():
    # Its import makes an asyncio Future, which needs a loop: in a server the import
    # happens inside a request; here earlier tests may have left no current loop.
    async def import_it():
        import dask_labextension

        return dask_labextension

    dask_labextension = asyncio.run(import_it())
    from jupyter_server.utils import url_path_join

    from jupyter_ext.server.dask_lab import dask_lab_handlers

    added = []

    class WebApp:
        settings = {"base_url": "/user/alice/"}

        def add_handlers(self, host, handlers):
            added.extend(handlers)

    class ServerApp:
        web_app = WebApp()

    dask_labextension.load_jupyter_server_extension(ServerApp())
    theirs = [pattern for pattern, _ in added]
    ours = [url_path_join("/user/alice/", p) for p, _ in dask_lab_handlers()]
    assert [p for p in ours if p in theirs] == theirs  # every route of theirs, in their order
    # lens adds one: malformed cluster ids get the handler's JSON 404, not the server's page
    assert [p for p in ours if p not in theirs] == [
        url_path_join("/user/alice/", r"/dask/clusters/(?P<cluster_id>[^/]+)")]


def test_lens_dashboard_proxy_overrides_what_jupyter_server_proxy_has():
    from jupyter_server_proxy.handlers import ProxyHandler

    for name in ("_rewrite_location_header", "get_client_uri", "proxy_request_headers", "proxy", "proxy_open"):
        assert callable(getattr(ProxyHandler, name, None)), name
    assert list(inspect.signature(ProxyHandler._rewrite_location_header).parameters) == [
        "self", "location", "host", "port", "proxied_path"]


def test_guest_websocket_watch_relies_on_what_is_there():
    """jupyter_ext.server.guests: tornado's WebSocketHandler.get is the coroutine every Jupyter
    websocket handler ends in, and HubAuth keeps its per-request answer in _cached_hub_user."""
    from jupyterhub.services.auth import HubAuth
    from tornado.websocket import WebSocketHandler

    assert inspect.iscoroutinefunction(WebSocketHandler.get)
    assert "handler._cached_hub_user" in inspect.getsource(HubAuth._get_user)
    for module, cls in [("jupyter_server.services.kernels.websocket", "KernelWebsocketHandler"),
                        ("jupyter_server_ydoc.handlers", "YDocWebSocketHandler"),
                        ("jupyter_server_terminals.handlers", "TermSocket")]:
        handler = getattr(__import__(module, fromlist=[cls]), cls)
        assert issubclass(handler, WebSocketHandler)
        assert "super().get(" in inspect.getsource(handler.get), f"{cls}.get no longer ends in tornado's"
