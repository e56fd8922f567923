"""Per-task supervisor of the local backend (stdlib only; run as ``python -I _runner.py DIR``).

It runs detached from the lens service (its own session), so tasks survive a service
restart. It stays with the service's privileges, starts the user's command as the user's
unix account (setgid/setgroups/setuid through subprocess), captures stdout and stderr,
enforces the walltime, forwards cancellation to the whole process group, and records the
outcome in exit.json, where the user's processes cannot write.
"""

import json
import os
import signal
import subprocess
import sys
import threading
import time

GRACE_S = 5.0


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
    state = {"cancelled": False, "timeout": False, "child": None}

    def kill_group(sig):
        child = state["child"]
        if child is not None and child.poll() is None:
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
        return
    kwargs = {}
    if job.get("uid") is not None and os.geteuid() == 0:
        kwargs = {"user": job["uid"], "group": job["gid"], "extra_groups": job["groups"]}
    with open(os.path.join(taskdir, "output.log"), "ab", buffering=0) as out:
        try:
            state["child"] = subprocess.Popen(
                job["argv"], cwd=job["cwd"], env=env, stdin=subprocess.DEVNULL, stdout=out,
                stderr=subprocess.STDOUT, process_group=0, close_fds=True, **kwargs)
        except (OSError, subprocess.SubprocessError) as exc:
            out.write(f"lens: cannot start {job['argv'][0]!r}: {exc}\n".encode())
            write_json(os.path.join(taskdir, "exit.json"), {
                "exit_code": 127, "signal": None, "started": started, "ended": time.time(),
                "reason": f"cannot start: {exc}"})
            return
        write_json(os.path.join(taskdir, "child.json"), {"pid": state["child"].pid})
        if state["cancelled"]:
            stop("cancelled")
        deadline = started + job["walltime_s"]
        child = state["child"]
        while True:
            try:
                rc = child.wait(timeout=max(0.05, min(1.0, deadline - time.time())))
                break
            except subprocess.TimeoutExpired:
                if time.time() >= deadline and not state["timeout"]:
                    out.write(b"lens: walltime exceeded, stopping the job\n")
                    stop("timeout")
    try:  # nothing of the job outlives it (background processes included)
        os.killpg(child.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    reason = "CANCELLED" if state["cancelled"] else ("TIMEOUT" if state["timeout"] else "")
    write_json(os.path.join(taskdir, "exit.json"), {
        "exit_code": rc if rc >= 0 else 128 - rc, "signal": -rc if rc < 0 else None,
        "started": started, "ended": time.time(), "reason": reason})


if __name__ == "__main__":
    main(sys.argv[1])
