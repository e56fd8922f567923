"""Background tasks: progress snapshots, results, errors and cancellation."""

from __future__ import annotations

import threading

from jupyter_ext.archive.tasks import Task

from .helpers import ALICE, BOB, engine, make_tree, snapshot


async def test_archive_then_restore_as_tasks(tmp_path):
    src = make_tree(str(tmp_path / "src"))
    eng = engine(str(tmp_path / "repo"))
    t = Task("archive", eng.create, [src], owner="alice", principal=ALICE, name="a").start()
    await t.wait()
    d = t.as_dict()
    assert d["status"] == "done" and d["result"]["archive"]["name"] == "a"
    assert d["progress"]["phase"] == "done" and d["progress"]["files_done"] == 4
    r = Task("restore", eng.restore, "a", target=str(tmp_path / "out"), owner="alice",
             principal=ALICE).start()
    await r.wait()
    assert r.status == "done", r.error
    assert snapshot(str(tmp_path / "out" / "data")) == snapshot(src)


async def test_task_errors_and_cancel(tmp_path):
    src = make_tree(str(tmp_path / "src"), scale=4)
    eng = engine(str(tmp_path / "repo"))
    denied = Task("archive", eng.create, [src], owner="alice", principal=BOB, name="x").start()
    await denied.wait()
    assert denied.status == "failed" and "may not use" in denied.error
    gate = threading.Event()

    def slow_create(*args, progress, cancel, **kw):
        def hook(p):
            progress(p)
            gate.set()
            cancel.wait(5)  # hold the archive until the test cancels
        return eng.create(*args, progress=hook, cancel=cancel, **kw)

    t = Task("archive", slow_create, [src], owner="alice", principal=ALICE, name="c").start()
    assert gate.wait(10)
    t.cancel()
    await t.wait()
    assert t.status == "cancelled"
    assert eng.list(owner="alice", principal=ALICE) == []
    assert eng.check(owner="alice", principal=ALICE).ok
