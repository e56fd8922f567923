"""Child process for the crash test: archive a tree, then exit. Killed with SIGKILL."""

from __future__ import annotations

import sys

from jupyter_ext.archive.engine import ArchiveEngine
from jupyter_ext.archive.repository import Principal


def main(repo: str, src: str, mode: str = "create") -> None:
    # "create-readers": small files go to reader processes (whatever their count)
    readers = {"readers_from": 1, "reader_processes": 2} if mode == "create-readers" else {}
    # "restore-writers": small files go to writer processes (whatever their count);
    # "restore": threads write them
    writers = {"restore_processes": 2 if mode == "restore-writers" else 0,
               "restore_processes_from": 1}
    eng = ArchiveEngine(repository=repo, chunk_avg_size=16 * 1024, pack_size=96 * 1024,
                        workers=2, upload_workers=2, local_fsync=True, cache_dir="", **readers,
                        **writers)
    print("ready", flush=True)
    who = Principal("alice")
    if mode.startswith("restore"):  # src is the restore target here
        res = eng.restore("crashy", target=src, owner="alice", principal=who)
        print("done", res["state"]["status"], flush=True)
        return
    res = eng.create([src], owner="alice", principal=who, name="crashy")
    print("done", res["archive"]["id"], flush=True)


if __name__ == "__main__":
    main(*sys.argv[1:])
