"""Work around a deadlock in the dask-gateway 2026.3.0 client.

A synchronous ``Gateway`` collected by the garbage collector *inside* its own
event-loop thread (e.g. the internal Gateway of a ``GatewayCluster`` whose
creation was refused by a limit) runs ``__del__ -> close() -> sync()``, which
waits on the very loop it blocks: the notebook hangs forever. ``install()``
makes ``__del__`` non-blocking when it runs on a running event loop.
Call it once per process (the lens kernel config does; tests do).

Written for dask-gateway 2026.3.0; on another version it is not installed
(a warning says so): see ``jupyter_ext.upstream.PATCHES["dask-gateway.client_del"]``.
No upstream issue found for this deadlock (related: dask/dask-gateway#162).
"""

from __future__ import annotations

import asyncio

_INSTALLED = False


def install() -> bool:
    """Patch ``Gateway.__del__``; False (not patched) on another dask-gateway version."""
    global _INSTALLED
    if _INSTALLED:
        return True
    from jupyter_ext.upstream import check

    if not check("dask-gateway.client_del"):
        return False
    from dask_gateway.client import Gateway

    original = Gateway.__del__

    def __del__(self):  # noqa: N807
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        if loop is not None and not getattr(self, "asynchronous", True):
            session = getattr(self, "_session", None)
            if session is not None and not session.closed:
                loop.create_task(session.close())
            return
        try:
            original(self)
        except RuntimeError:
            # the shared loop already stopped: nothing left to close
            pass

    Gateway.__del__ = __del__
    _INSTALLED = True
    return True
