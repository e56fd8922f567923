"""%atom: HPC jobs (placeholder until the jobs routes land)."""

from __future__ import annotations

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_cell_magic, magics_class


@magics_class
class AtomMagics(Magics):
    @line_cell_magic
    def atom(self, line, cell=None):
        """Submit and manage HPC jobs (placeholder: job submission is not wired into this hub yet)."""
        raise UsageError("%atom is a placeholder: job submission is not wired into this hub yet.")
