"""Background tasks over the engine, for the server extension (no Jupyter imports).

    task = Task("archive", engine.create, [paths], owner=..., principal=..., name=...)
    task.start()                 # runs in a daemon thread
    task.as_dict()               # status, latest progress snapshot, result or error
    task.cancel()                # cooperative; the repository stays consistent
    await task.wait()            # from asyncio code

The engine call receives ``progress=`` and ``cancel=``; an interrupted archive or
restore is resumed by starting the same call again (a new Task).
"""

from __future__ import annotations

import asyncio
import secrets
import threading
import time

from .errors import ArchiveError, Cancelled


class Task:
    def __init__(self, kind: str, fn, *args, **kwargs):
        self.id = secrets.token_hex(8)
        self.kind = kind
        self.fn, self.args, self.kwargs = fn, args, kwargs
        self.status = "pending"
        self.progress: dict = {}
        self.result = None
        self.error = ""
        self.created = time.time()
        self.finished: float | None = None
        self._cancel = threading.Event()
        self._done = threading.Event()
        self._thread: threading.Thread | None = None

    def _on_progress(self, p) -> None:
        self.progress = p.as_dict()

    def _run(self) -> None:
        self.status = "running"
        try:
            self.result = self.fn(*self.args, progress=self._on_progress,
                                  cancel=self._cancel, **self.kwargs)
            self.status = "done"
        except Cancelled:
            self.status = "cancelled"
        except ArchiveError as exc:
            self.status, self.error = "failed", str(exc)
        except Exception as exc:  # reported to the user, never lost in a thread
            self.status, self.error = "failed", f"{type(exc).__name__}: {exc}"
        finally:
            self.finished = time.time()
            self._done.set()

    def start(self) -> Task:
        self._thread = threading.Thread(target=self._run, name=f"lens-{self.kind}-{self.id}",
                                        daemon=True)
        self._thread.start()
        return self

    def cancel(self) -> None:
        self._cancel.set()

    @property
    def done(self) -> bool:
        return self._done.is_set()

    async def wait(self) -> Task:
        if not self._done.is_set():
            await asyncio.to_thread(self._done.wait)
        return self

    def as_dict(self) -> dict:
        return {"id": self.id, "kind": self.kind, "status": self.status,
                "progress": self.progress, "result": self.result, "error": self.error,
                "created": self.created, "finished": self.finished}
