"""Run code right after a module is first imported, without importing it now.

Why: kernels must not import ``dask_gateway`` when they start (it slowed every
kernel start), yet lens extends dask-gateway's client as soon as a notebook
imports it: the cost line in the cluster widget (``widget``) and the client
deadlock fix (``client_fix``). ``when_imported(name, callback)`` puts a small
``sys.meta_path`` finder first. When ``name`` is about to be imported, the
finder asks the other finders for the module's spec and wraps its loader, so
``callback(module)`` runs right after the module's own code. The original
loader is then put back on the module and the finder removes itself once no
callbacks wait. A failing callback is logged at debug; it never breaks the
import.
"""

from __future__ import annotations

import importlib.abc
import logging
import sys
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)

_lock = threading.Lock()
_waiting: dict[str, list[Callable]] = {}


def _run(callback: Callable, module) -> None:
    try:
        callback(module)
    except Exception:
        log.debug("post-import hook %r for %s failed", callback, module.__name__, exc_info=True)


class _Loader(importlib.abc.Loader):
    """The module's own loader, plus the callbacks after ``exec_module``."""

    def __init__(self, loader, name: str):
        self._loader = loader
        self._name = name

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module):
        self._loader.exec_module(module)
        module.__loader__ = self._loader
        if getattr(module, "__spec__", None) is not None:
            module.__spec__.loader = self._loader
        with _lock:
            callbacks = _waiting.pop(self._name, [])
            if not _waiting:
                _uninstall()
        for callback in callbacks:
            _run(callback, module)

    def __getattr__(self, name):  # get_source, get_resource_reader, ...
        return getattr(self._loader, name)


class _Finder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path, target=None):
        if fullname not in _waiting:
            return None
        for finder in list(sys.meta_path):
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                break
        else:
            return None
        if spec.loader is None or not hasattr(spec.loader, "exec_module"):
            log.debug("cannot hook the import of %s (loader %r)", fullname, spec.loader)
            return None
        spec.loader = _Loader(spec.loader, fullname)
        return spec


_FINDER = _Finder()


def _uninstall() -> None:
    if _FINDER in sys.meta_path:
        sys.meta_path.remove(_FINDER)


def when_imported(name: str, callback: Callable) -> None:
    """``callback(module)`` once ``name`` is imported: now if it already is."""
    module = sys.modules.get(name)
    if module is not None:
        _run(callback, module)
        return
    with _lock:
        _waiting.setdefault(name, []).append(callback)
        if _FINDER not in sys.meta_path:
            sys.meta_path.insert(0, _FINDER)


def _extend_dask_gateway_client(module) -> None:
    from jupyter_ext.kernel import dask_client_fix as client_fix
    from jupyter_ext.kernel import dask_widget as widget

    client_fix.install()
    widget.install(module)


def install_kernel_hooks() -> None:
    """What a lens kernel runs at start (the lens IPython extension): cheap, imports nothing heavy."""
    with _lock:
        if _extend_dask_gateway_client in _waiting.get("dask_gateway.client", []):
            return
    when_imported("dask_gateway.client", _extend_dask_gateway_client)
