"""IPython magics of lens, auto-loaded in every kernel of a lens environment
(jupyter-config/ipython/ipython_kernel_config.py): %atom, %costs, %archive,
%archives, %restore."""

from __future__ import annotations


def load_ipython_extension(ipython):
    from jupyter_ext.kernel.magics.archive import ArchiveMagics
    from jupyter_ext.kernel.magics.atom import AtomMagics
    from jupyter_ext.kernel.magics.costs import CostsMagics

    for magics in (CostsMagics, AtomMagics, ArchiveMagics):
        ipython.register_magics(magics)
    # Importing dask_gateway here would slow every kernel start. A post-import hook
    # extends its client when the notebook imports it: the cost in the cluster widget
    # and the client deadlock fix (jupyter_ext.kernel.import_hook).
    from jupyter_ext.kernel.import_hook import install_kernel_hooks

    install_kernel_hooks()
