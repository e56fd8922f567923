"""%archive, %archives, %restore (placeholders until the archive routes land)."""

from __future__ import annotations

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_magic, magics_class


def _placeholder(name: str):
    raise UsageError(f"%{name} is a placeholder: archiving is not wired into this hub yet.")


@magics_class
class ArchiveMagics(Magics):
    @line_magic
    def archive(self, line):
        """Archive results to S3/Glacier (placeholder: not wired into this hub yet)."""
        _placeholder("archive")

    @line_magic
    def archives(self, line):
        """List archives (placeholder: not wired into this hub yet)."""
        _placeholder("archives")

    @line_magic
    def restore(self, line):
        """Restore an archive (placeholder: not wired into this hub yet)."""
        _placeholder("restore")
