"""Per-task supervisor of the local backend (stdlib only; run as ``python -I _runner.py DIR``).

It runs detached from the lens service (its own session), so tasks survive a service
restart. It stays with the service's privileges, starts the user's command as the user's
unix account (setgid/setgroups/setuid through subprocess), captures stdout and stderr,
enforces the walltime, forwards cancellation to the whole job, and records the outcome in
exit.json, where the user's processes cannot write.

When the service gives it a cgroup (``launch.json``: as root with cgroup v2), the job runs
in that group: the task lasts until the group's last process exits (a daemonized
``setsid sleep &`` included), cancel and walltime kill the whole group, and the group is
removed at the end. Without one it falls back to the job's process group, which is killed
when the main process exits.
"""

import importlib.util
import json
import os
import signal
import subprocess
import sys
import threading
import time

GRACE_S = 5.0
POLL_S = 0.1


def load_cgroups():
    """jupyter_ext/cgroups.py, loaded by path (``-I`` keeps lens off sys.path)."""
    here = os.path.dirname(os.path.abspath(__file__))
    path = os.path.join(os.path.dirname(os.path.dirname(here)), "cgroups.py")
    spec = importlib.util.spec_from_file_location("lens_cgroups", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def read_json(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def write_json(path, data):
    tmp = f"{path}.tmp"
    with open(tmp, "w") as f:
        json.dump(data, f)
    os.replace(tmp, path)


def main(taskdir):
    index = int(os.path.basename(taskdir))
    jobdir = os.path.dirname(os.path.dirname(taskdir))
    with open(os.path.join(jobdir, "job.json")) as f:
        job = json.load(f)
    env = dict(job["env"])
    if job.get("array"):
        env["LENS_ARRAY_INDEX"] = str(index)
        if job.get("params"):
            env.update(job["params"][index])
    # "inside": this supervisor is in the job's group for a moment (to start the child
    # there); a stop then only takes note, and acts once it has left
    state = {"cancelled": False, "timeout": False, "child": None, "inside": False}
    group = (read_json(os.path.join(taskdir, "launch.json")) or {}).get("cgroup")
    cg = home = None
    if group:
        try:
            cg = load_cgroups()
            home = cg.own_cgroup2()  # where this supervisor stays
            if home is None:
                raise OSError("this process has no cgroup v2 group")
            cg.create_cgroup(group)
        except (OSError, ImportError) as exc:  # the service is told through runner.err
            print(f"lens: no cgroup for this task ({exc}); using its process group",
                  file=sys.stderr, flush=True)
            group = None

    def kill_group(sig):
        child = state["child"]
        if state["inside"]:
            return
        if group:  # everything in the job's cgroup, also once the main process is gone
            cg.signal_cgroup(group, sig)
        elif child is not None and child.poll() is None:
            try:
                os.killpg(child.pid, sig)
            except ProcessLookupError:
                pass

    def stop(reason):
        state[reason] = True
        kill_group(signal.SIGTERM)
        t = threading.Timer(GRACE_S, kill_group, args=(signal.SIGKILL,))
        t.daemon = True
        t.start()

    signal.signal(signal.SIGTERM, lambda *_: stop("cancelled"))
    signal.signal(signal.SIGINT, lambda *_: stop("cancelled"))
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    started = time.time()
    # From here on a cancel is a signal we handle; before, the service only left a marker
    # (it signals us only once ready.json exists), so look for that marker now.
    write_json(os.path.join(taskdir, "ready.json"), {"time": started})
    if os.path.exists(os.path.join(jobdir, "cancelled")):
        write_json(os.path.join(taskdir, "exit.json"), {
            "exit_code": None, "signal": None, "started": started, "ended": time.time(),
            "reason": "CANCELLED"})
        if group:
            cg.remove_cgroup(group)
        return
    kwargs = {}
    if job.get("uid") is not None and os.geteuid() == 0:
        kwargs = {"user": job["uid"], "group": job["gid"], "extra_groups": job["groups"]}
    with open(os.path.join(taskdir, "output.log"), "ab", buffering=0) as out:
        try:
            if group:  # the child is born in the job's group; this supervisor is not
                state["inside"] = True
                cg.join_cgroup(group)
            state["child"] = subprocess.Popen(
                job["argv"], cwd=job["cwd"], env=env, stdin=subprocess.DEVNULL, stdout=out,
                stderr=subprocess.STDOUT, process_group=0, close_fds=True, **kwargs)
        except (OSError, subprocess.SubprocessError) as exc:
            out.write(f"lens: cannot start {job['argv'][0]!r}: {exc}\n".encode())
            write_json(os.path.join(taskdir, "exit.json"), {
                "exit_code": 127, "signal": None, "started": started, "ended": time.time(),
                "reason": f"cannot start: {exc}"})
            return
        finally:
            if group:
                cg.join_cgroup(home)
                state["inside"] = False
                if state["child"] is None:
                    cg.remove_cgroup(group)
        write_json(os.path.join(taskdir, "child.json"), {"pid": state["child"].pid,
                                                         "cgroup": group})
        if state["cancelled"]:
            stop("cancelled")
        deadline = started + job["walltime_s"]
        child = state["child"]
        rc = None
        while True:
            if rc is None:
                try:
                    rc = child.wait(timeout=max(0.05, min(1.0, deadline - time.time())))
                except subprocess.TimeoutExpired:
                    pass
            # the task lasts until its last process exits, not only its main one
            if rc is not None and (not group or cg.cgroup_empty(group)):
                break
            if time.time() >= deadline and not state["timeout"]:
                out.write(b"lens: walltime exceeded, stopping the job\n")
                stop("timeout")
            if rc is not None:
                time.sleep(POLL_S)
    ended = time.time()
    if group:  # empty by now; remove it (a last kill in case of a race)
        cg.kill_cgroup(group)
    else:
        try:  # nothing of the job outlives it (background processes included)
            os.killpg(child.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    reason = "CANCELLED" if state["cancelled"] else ("TIMEOUT" if state["timeout"] else "")
    write_json(os.path.join(taskdir, "exit.json"), {
        "exit_code": rc if rc >= 0 else 128 - rc, "signal": -rc if rc < 0 else None,
        "started": started, "ended": ended, "reason": reason})


if __name__ == "__main__":
    main(sys.argv[1])
