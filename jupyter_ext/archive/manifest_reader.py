"""A stored manifest's checked rows, a page at a time, for a restore's plan.

A large manifest is read by a helper process (:mod:`.manifest_process`) while
this process loads the chunk index and places the rows it sends: the parse and
its checks were half of a plan, on one core (30,000 files: 0.38-0.41 s against
0.51-0.54 s). A small one is read here: the helper's start costs more than it
saves below about 10,000 files (8,000: 96 ms against 89 ms here)."""

from __future__ import annotations

import shutil
import threading
from contextlib import contextmanager

from .errors import IntegrityError, TooLarge, UnsafePath
from .framing import read_message
from .helpers import HelperPool
from .manifest_process import DONE, PAGE, checked_pages

HELPER_FROM = 10_000  # files (the archive entry's count) from which the helper reads
FEED = 1024 * 1024    # bytes of the stored manifest per write to the helper
_ERRORS = {cls.__name__: cls for cls in (IntegrityError, TooLarge, UnsafePath)}


class ManifestReader(HelperPool):
    what = "manifest reader"
    again = "try again"

    def __init__(self):
        super().__init__("jupyter_ext.archive.manifest_process", 1)
        self.proc = self.procs[0]

    def pages(self):
        """The helper's pages until its DONE; its refusal raised as the error it was."""
        while True:
            message = read_message(self.proc.stdout)
            if message is None:
                self.stopped(self.proc)
            kind, value = message
            if kind == DONE:
                return
            if kind != PAGE:
                name, text = value
                raise _ERRORS.get(name, IntegrityError)(text)
            yield value


@contextmanager
def manifest_pages(repo, entry):
    """The pages of ``entry``'s manifest (``checked_pages``' rows), from the helper
    when the archive holds ``HELPER_FROM`` files or more."""
    with repo.open_manifest(entry) as stream:
        if entry.files < HELPER_FROM:
            yield checked_pages(stream)
            return
        reader = ManifestReader()
        feeder = threading.Thread(target=_feed, args=(stream, reader.proc.stdin),
                                  name="lens-manifest", daemon=True)
        feeder.start()
        ok = False
        try:
            yield reader.pages()
            ok = True
        finally:
            if not ok:
                reader.proc.kill()  # a feed blocked on a full pipe ends with it
            feeder.join()
            reader.close(kill=not ok)


def _feed(stream, pipe) -> None:
    """Copy the stored manifest to the helper, then close its stdin (its EOF)."""
    try:
        shutil.copyfileobj(stream, pipe, FEED)
    except (OSError, ValueError):
        pass  # the helper was stopped, or the read failed: it sees a cut manifest
    finally:
        try:
            pipe.close()
        except OSError:
            pass
