"""IPython magics of lens, auto-loaded in every kernel of a lens environment
(jupyter-config/ipython/ipython_kernel_config.py): %atom, %costs, %archive,
%archives, %restore."""

from __future__ import annotations


def load_ipython_extension(ipython):
    from .archive import ArchiveMagics
    from .atom import AtomMagics
    from .costs import CostsMagics

    for magics in (CostsMagics, AtomMagics, ArchiveMagics):
        ipython.register_magics(magics)
    # The dask-gateway client deadlock workaround (jupyter_ext.gateway.client_fix)
    # is not installed here: importing dask_gateway would slow every kernel start.
