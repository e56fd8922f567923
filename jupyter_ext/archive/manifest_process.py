"""What the manifest reader runs: ``python -m jupyter_ext.archive.manifest_process``.

A restore's plan of a large archive reads its manifest here, beside the lens
process, which meanwhile loads the chunk index and then places the rows this
process sends (the parse and checks were half of the plan, on one core). A
small manifest is read in the lens process itself, through the same
:func:`checked_pages`. This module imports :mod:`.manifest` and :mod:`.framing`
and nothing else of lens.

On stdin: the manifest as stored (zstd JSON). On stdout, :mod:`.framing`'s
messages: ``(PAGE, rows)`` per page of checked rows (:func:`checked_pages`),
then ``(DONE, None)`` once the whole manifest checked out, or ``(FAILED, (kind,
message))`` when it is refused (``kind``: the error's class name).
"""

from __future__ import annotations

import sys

from .errors import IntegrityError, UnsafePath
from .framing import frame, write_all
from .manifest import FileEntry, iter_files

PAGE, DONE, FAILED = 0, 1, 2
ROWS_PER_PAGE = 256  # rows per message: the plan looks their chunks up in one query


def row_of(f: FileEntry) -> tuple:
    """A plan's row of a manifest entry: ``(path, type, mode, mtime_ns, size, chunk
    ids as 32-byte bytes, target)``."""
    return (f.path, f.type, f.mode, f.mtime_ns, f.size, [bytes.fromhex(h) for h in f.chunks],
            f.target)


def checked_pages(data):
    """Lists of up to ``ROWS_PER_PAGE`` rows (``row_of``) of a stored manifest, each
    entry checked (``FileEntry.validate``: paths, links, chunk ids) before it is
    yielded. The manifest's format is checked at the end (IntegrityError after the
    last page)."""
    page: list = []
    for f in iter_files(data, {}):
        page.append(row_of(f.validate()))
        if len(page) >= ROWS_PER_PAGE:
            yield page
            page = []
    if page:
        yield page


def main() -> None:
    out = sys.stdout.fileno()
    try:
        for page in checked_pages(sys.stdin.buffer):
            write_all(out, [frame((PAGE, page))])
    except (IntegrityError, UnsafePath) as exc:  # the manifest's fault: told, not a crash
        write_all(out, [frame((FAILED, (type(exc).__name__, str(exc))))])
        return
    write_all(out, [frame((DONE, None))])


if __name__ == "__main__":
    main()
