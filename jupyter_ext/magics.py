"""IPython magics: %atom, %costs, %archive, %archives, %restore.

Auto-loaded in every kernel of a lens environment (see
jupyter-config/ipython/ipython_kernel_config.py).
"""

from __future__ import annotations

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_cell_magic, line_magic, magics_class

PLACEHOLDER = "This magic is a placeholder in lens {version}: {what} is not wired into this hub yet."


def _placeholder(what: str):
    from . import __version__

    raise UsageError(PLACEHOLDER.format(version=__version__, what=what))


@magics_class
class LensMagics(Magics):
    @line_cell_magic
    def atom(self, line, cell=None):
        """Submit and manage HPC jobs (placeholder: job submission is not wired in yet)."""
        _placeholder("%atom (HPC jobs)")

    @line_magic
    def costs(self, line):
        """Show spending against your budget (placeholder: costs are not wired in yet)."""
        _placeholder("%costs (costs and budgets)")

    @line_magic
    def archive(self, line):
        """Archive results to S3/Glacier (placeholder: archiving is not wired in yet)."""
        _placeholder("%archive (archives)")

    @line_magic
    def archives(self, line):
        """List archives (placeholder: archiving is not wired in yet)."""
        _placeholder("%archives (archives)")

    @line_magic
    def restore(self, line):
        """Restore an archive (placeholder: archiving is not wired in yet)."""
        _placeholder("%restore (archives)")


def load_ipython_extension(ipython):
    ipython.register_magics(LensMagics)
