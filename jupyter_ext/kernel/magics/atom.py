"""%atom / %%atom: HPC jobs from a notebook, through the lens service.

    job = %atom submit --name fit --vcpus 4 --walltime 1h -- python fit.py --seed 3
    %%atom submit --name ens --array 100
    python member.py "$LENS_ARRAY_INDEX"

    %atom estimate --app wrf --nodes 2       # price and instance, no submission
    %atom status [ID] | list | logs ID [--follow] | cancel ID | apps
"""

from __future__ import annotations

import time
from html import escape

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_cell_magic, magics_class
from IPython.core.magic_arguments import MagicArgumentParser
from IPython.display import HTML, display

from jupyter_ext.kernel.magics.common import client, lens_errors, shown, split_line

TERMINAL = {"SUCCEEDED", "FAILED", "CANCELLED", "LOST", "REJECTED"}


def _kv(values: list[str] | None, what: str) -> dict[str, str]:
    out = {}
    for item in values or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"{what} must look like KEY=VALUE, not {item!r}")
        out[key] = value
    return out


def spec_parser(prog: str) -> MagicArgumentParser:
    p = MagicArgumentParser(prog=prog, add_help=False)
    p.add_argument("--name", "-n", help="job name (letters, digits, _.-)")
    p.add_argument("--app", help="an app from `%%atom apps` (e.g. wrf, geos-chem)")
    p.add_argument("--version", help="app version (default: the catalog's)")
    p.add_argument("--image", help="a container image, instead of an app")
    p.add_argument("--arch", help="x86_64-amd (default), x86_64-intel or arm64")
    p.add_argument("--vcpus", type=int)
    p.add_argument("--memory", help="per node, e.g. 4Gi (GiB) or 4G (10^9 bytes)")
    p.add_argument("--gpus", type=int)
    p.add_argument("--nodes", type=int, help="nodes for multi-node MPI runs")
    p.add_argument("--walltime", help="e.g. 90m, 02:00:00")
    p.add_argument("--spot", action="store_true", help="spot capacity (cheaper, may be interrupted)")
    p.add_argument("--array", type=int, help="ensemble size: members get $LENS_ARRAY_INDEX")
    p.add_argument("--after", action="append", help="run after job ID succeeds (afterok:ID, afterany:ID)")
    p.add_argument("--input", action="append", help="s3:// URI or path given to the job")
    p.add_argument("--output", help="outputs prefix")
    p.add_argument("--env", action="append", help="KEY=VALUE for the job's environment")
    p.add_argument("--tag", action="append", help="KEY=VALUE cost-allocation tag")
    p.add_argument("--project", help="the group (lab) budget to charge")
    p.add_argument("--backend", help="local, slurm or batch")
    p.add_argument("command", nargs="*", help="after --: the command and its arguments, run literally")
    return p


def build_spec(args, script: str | None) -> dict:
    """Turn parsed options into a job spec (validated by the service)."""
    spec = {
        k: v
        for k, v in {
            "name": args.name, "app": args.app, "version": args.version, "image": args.image,
            "arch": args.arch, "vcpus": args.vcpus, "memory": args.memory, "gpus": args.gpus,
            "nodes": args.nodes, "walltime": args.walltime, "array": args.array,
            "outputs": args.output, "project": args.project, "backend": args.backend,
        }.items()
        if v is not None
    }
    if args.spot:
        spec["spot"] = True
    if args.after:
        spec["depends_on"] = args.after
    if args.input:
        spec["inputs"] = args.input
    if args.env:
        spec["env"] = _kv(args.env, "--env")
    if args.tag:
        spec["tags"] = _kv(args.tag, "--tag")
    if script is not None:
        if args.command:
            raise UsageError("give either a cell body (the script) or a command after --, not both")
        spec["script"] = script
    elif args.command:
        spec["command"] = list(args.command)
    if "name" not in spec:
        spec["name"] = args.app or (args.command[0].rsplit("/", 1)[-1] if args.command else "job")
    return spec


def money(micro) -> str:
    return "—" if micro is None else f"${micro / 1_000_000:,.4f}"


def jobs_table_html(jobs: list[dict]) -> str:
    from html import escape

    rows = "".join(
        f"<tr><td>{escape(j['id'])}</td><td>{escape(j.get('name', ''))}</td><td>{escape(j.get('state', ''))}</td>"
        f"<td>{j.get('runtime_s') or 0:.0f} s</td>"
        f"<td>{money(j.get('cost_micro') if j.get('cost_micro') is not None else j.get('cost_so_far_micro'))}</td></tr>"
        for j in jobs
    )
    return (
        "<table class='lens-jobs'><tr><th>id</th><th>name</th><th>state</th><th>runtime</th>"
        f"<th>cost so far</th></tr>{rows}</table>"
    )


class JobHandle:
    """What `job = %atom submit ...` returns."""

    def __init__(self, record: dict):
        self.id = record["id"]
        self._record = record

    def refresh(self) -> dict:
        with lens_errors():
            self._record = client().service("GET", f"jobs/{self.id}")
        return self._record

    @property
    def status(self) -> str:
        return self.refresh()["state"]

    @property
    def record(self) -> dict:
        return self._record

    @property
    def outputs(self) -> str | None:
        return (self._record.get("spec") or {}).get("outputs")

    def wait(self, timeout: float | None = None, interval: float = 2.0) -> str:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.status not in TERMINAL:
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"job {self.id} still {self._record['state']} after {timeout}s")
            time.sleep(interval)
        return self._record["state"]

    def logs(self, tail: int | None = None) -> str:
        with lens_errors():
            params = {"tail": tail} if tail else None
            return client().service("GET", f"jobs/{self.id}/logs", params=params)["logs"]

    def cancel(self) -> dict:
        with lens_errors():
            self._record = client().service("DELETE", f"jobs/{self.id}")
        return self._record

    def __repr__(self) -> str:
        r = self._record
        est = (r.get("estimate") or {}).get("est_cost_micro")
        return f"<atom job {self.id} {r.get('name')!r} {r.get('state')} (estimate {money(est)})>"


def job_table_widget(ids: list[str] | None = None, interval: float = 3.0):
    """An ipywidgets table of jobs refreshed with ONE batched call per tick."""
    import threading

    import ipywidgets as widgets

    out = widgets.HTML()
    params = {"ids": ",".join(ids)} if ids else None

    def tick():
        try:
            jobs = client().service("GET", "jobs", params=params)["jobs"]
        except Exception as exc:  # the widget must not die with a traceback
            out.value = f"<i>lens: {exc}</i>"
            return True
        out.value = jobs_table_html(jobs)
        return any(j["state"] not in TERMINAL for j in jobs)

    def loop():
        while tick():
            time.sleep(interval)

    if tick():
        threading.Thread(target=loop, daemon=True).start()
    return out


def versions_text(app: dict) -> str:
    """An app's versions as a list a person reads: "14.4.3, 14.3.1"."""
    versions = app.get("versions", app.get("version", ""))
    if isinstance(versions, list | tuple):
        return ", ".join(str(v) for v in versions)
    return str(versions)


@magics_class
class AtomMagics(Magics):
    @line_cell_magic
    def atom(self, line, cell=None):
        """HPC jobs: %atom submit|estimate|status|list|logs|cancel|apps (see %atom? )."""
        argv = split_line(line)
        if not argv:
            raise UsageError("usage: %atom submit|estimate|status|list|logs|cancel|apps ...")
        action, rest = argv[0], argv[1:]
        if cell is not None and action not in ("submit", "estimate"):
            raise UsageError("%%atom takes submit or estimate; the cell body is the job script")
        handler = getattr(self, f"_{action}", None)
        if handler is None:
            raise UsageError(f"unknown %atom action {action!r}: use submit, estimate, status, list, logs, cancel, apps")
        return handler(rest, cell)

    def _submit(self, argv, cell):
        args = spec_parser("%atom submit").parse_args(argv)
        spec = build_spec(args, cell)
        with lens_errors():
            record = client().service("POST", "jobs", json={"spec": spec})
        handle = JobHandle(record)
        est = record.get("estimate") or {}
        print(
            f"submitted {record['id']} ({record.get('name')}) on {record.get('backend')}: "
            f"held {money(est.get('est_cost_micro'))} for {est.get('instance_type', '?')}"
        )
        return handle

    def _estimate(self, argv, cell):
        args = spec_parser("%atom estimate").parse_args(argv)
        with lens_errors():
            est = client().service("POST", "jobs/estimate", json={"spec": build_spec(args, cell)})
        display(HTML(
            "<table class='tex2jax_ignore mathjax_ignore'>"
            + "".join(f"<tr><td>{escape(str(k))}</td><td>{escape(str(v))}</td></tr>" for k, v in est.items())
            + "</table>"
        ))
        return shown(est)

    def _status(self, argv, cell):
        if len(argv) > 1:
            raise UsageError("usage: %atom status [ID]")
        if argv:
            return JobHandle({"id": argv[0]}).refresh()
        return job_table_widget()

    def _list(self, argv, cell):
        if argv:
            raise UsageError("usage: %atom list")
        with lens_errors():
            jobs = client().service("GET", "jobs")["jobs"]
        display(HTML(jobs_table_html(jobs)))
        return None

    def _logs(self, argv, cell):
        p = MagicArgumentParser(prog="%atom logs", add_help=False)
        p.add_argument("id")
        p.add_argument("--tail", type=int)
        p.add_argument("--follow", "-f", action="store_true", help="keep printing until the job ends")
        args = p.parse_args(argv)
        handle = JobHandle({"id": args.id})
        if not args.follow:
            print(handle.logs(args.tail), end="")
            return None
        shown = 0
        while True:
            text = handle.logs()
            print(text[shown:], end="", flush=True)
            shown = len(text)
            if handle.status in TERMINAL:
                print(handle.logs()[shown:], end="")
                return None
            time.sleep(2)

    def _cancel(self, argv, cell):
        if len(argv) != 1:
            raise UsageError("usage: %atom cancel ID")
        record = JobHandle({"id": argv[0]}).cancel()
        print(f"{record['id']}: {record['state']}")
        return None

    def _apps(self, argv, cell):
        with lens_errors():
            apps = client().service("GET", "jobs/apps")["apps"]
        rows = "".join(
            f"<tr><td>{escape(str(a.get('name')))}</td><td>{escape(versions_text(a))}</td>"
            f"<td>{escape(str(a.get('description', '')))}</td></tr>"
            for a in apps
        )
        display(HTML(f"<table><tr><th>app</th><th>versions</th><th>description</th></tr>{rows}</table>"))
        return shown(apps)
