"""Helper processes that lens feeds over pipes: readers (archive) and writers
(restore). Each runs ``python -m MODULE`` with :mod:`.framing`'s messages on its
stdin and stdout, and exits when its stdin closes, so one left behind by a killed
parent goes with it."""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
from collections import deque

from .errors import ArchiveError
from .framing import frame

IN_FLIGHT = 2                   # requests queued per process
_F_SETPIPE_SZ = 1031


class HelperPool:
    """``n`` processes of ``module`` fed round-robin; answers come back in request
    order (subclasses read them from ``proc.stdout``).

    Each process has at most ``IN_FLIGHT`` requests queued, and requests are small
    (under a pipe's size), so a write to a process never blocks on one that is
    itself waiting for its answer to be read (no deadlock)."""

    what = "helper process"
    again = "try again"

    def __init__(self, module: str, n: int, args: tuple = ()):
        root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(
            p for p in (root, os.environ.get("PYTHONPATH", "")) if p)}
        self.procs: list = []
        try:
            for _ in range(n):
                proc = subprocess.Popen([sys.executable, "-m", module, *args], env=env,
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        close_fds=True)
                for pipe in (proc.stdin, proc.stdout):
                    try:  # larger pipes: fewer wake-ups per answer
                        fcntl.fcntl(pipe.fileno(), _F_SETPIPE_SZ, 1024 * 1024)
                    except OSError:
                        pass
                self.procs.append(proc)
        except BaseException:
            self.close(kill=True)
            raise
        self.queue: deque = deque()  # (process, tag) in request order
        self._next = 0

    def full(self) -> bool:
        return len(self.queue) >= IN_FLIGHT * len(self.procs)

    def submit(self, request, tag) -> None:
        """Send ``request`` to the next process; ``tag`` comes back with its answer."""
        proc = self.procs[self._next]
        self._next = (self._next + 1) % len(self.procs)
        self.send(proc, request)
        self.queue.append((proc, tag))

    def send(self, proc, request) -> None:
        """Send ``request`` to ``proc`` (no answer is expected unless queued)."""
        try:
            proc.stdin.write(frame(request))
            proc.stdin.flush()
        except OSError as exc:
            raise ArchiveError(f"a {self.what} stopped ({exc}); {self.again}") from None

    def stopped(self, proc):
        raise ArchiveError(f"a {self.what} stopped (exit code {proc.poll()}); {self.again}")

    def close(self, kill: bool = False) -> None:
        for proc in self.procs:
            try:
                if kill:
                    proc.kill()
                proc.stdin.close()
            except OSError:
                pass
        for proc in self.procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            proc.stdout.close()
        self.procs = []
