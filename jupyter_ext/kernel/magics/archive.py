"""%archive, %archives, %restore: results to S3/Glacier and back, from a notebook.

The work runs in the user server as a background task (it survives a kernel
restart); the magic only starts it and shows a progress bar.

    %archive results/ --name run-42 --tag project=ess --class GLACIER
    %archive results/ --dry-run          # monthly cost per class first
    %archives run-*
    %restore run-42 results/a.nc --to restored/ --tier bulk
"""

from __future__ import annotations

import threading
import time
from html import escape

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_magic, magics_class
from IPython.core.magic_arguments import MagicArgumentParser
from IPython.display import HTML, display

from jupyter_ext.constants import DEFAULT_TIER, RETRIEVAL_TIERS, STORAGE_CLASSES
from jupyter_ext.kernel.magics.atom import _kv
from jupyter_ext.kernel.magics.common import client, lens_errors, shown, split_line


def fmt_bytes(n) -> str:
    n = float(n or 0)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if n < 1000 or unit == "TB":
            return f"{n:,.1f} {unit}"
        n /= 1000
    return f"{n:,.1f} TB"


def progress_text(task: dict) -> str:
    p = task.get("progress") or {}
    parts = [task.get("kind", ""), task.get("status", "")]
    if p:
        parts.append(f"{fmt_bytes(p.get('bytes_done'))} / {fmt_bytes(p.get('bytes_total'))}")
        parts.append(f"{p.get('files_done', 0)} files")
        if p.get("dedup_ratio") is not None:
            parts.append(f"dedup {p.get('dedup_ratio', 0):.2f}x")
        if p.get("mb_per_s"):
            parts.append(f"{p['mb_per_s']:.1f} MB/s")
        if p.get("eta") is not None and task.get("status") == "running":
            parts.append(f"ETA {p['eta']:.0f} s")
    if task.get("error"):
        parts.append(f"error: {task['error']}")
    return " · ".join(str(x) for x in parts if x != "")


def watch_task(task: dict, wait: bool, interval: float = 0.5) -> dict:
    """A progress bar polling the server's task; blocks only with wait=True."""
    import ipywidgets as widgets

    bar = widgets.FloatProgress(min=0.0, max=1.0, description=task["kind"])
    label = widgets.HTML()
    display(widgets.VBox([bar, label]))
    state = {"task": task}

    def update() -> bool:
        try:
            t = client().request("GET", f"archives/tasks/{task['id']}")
        except Exception as exc:
            label.value = f"<i>lens: {escape(str(exc))}</i>"
            return False
        state["task"] = t
        p = t.get("progress") or {}
        total = p.get("bytes_total") or 0
        bar.value = 1.0 if t["status"] == "done" else (p.get("bytes_done", 0) / total if total else 0.0)
        bar.bar_style = {"done": "success", "failed": "danger", "cancelled": "warning"}.get(t["status"], "")
        label.value = escape(progress_text(t))
        return t["status"] in ("pending", "running")

    def loop():
        while update():
            time.sleep(interval)

    if wait:
        loop()
    else:
        threading.Thread(target=loop, daemon=True).start()
    return state["task"]


def cost_table_html(table) -> str:
    rows = table if isinstance(table, list) else [{"class": k, **(v if isinstance(v, dict) else {"cost": v})}
                                                   for k, v in (table or {}).items()]
    if not rows:
        return "<i>no cost table</i>"
    cols = list(rows[0].keys())
    head = "".join(f"<th>{escape(str(c))}</th>" for c in cols)
    body = "".join("<tr>" + "".join(f"<td>{escape(str(r.get(c)))}</td>" for c in cols) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def tier_cost_text(estimate: dict) -> str:
    if estimate.get("cost_usd") is not None:
        return f"${float(estimate['cost_usd']):,.4f}"
    if estimate.get("cost_micro") is not None:
        return f"${int(estimate['cost_micro']) / 1_000_000:,.4f}"
    return ""


def hours_text(hours) -> str:
    """A tier's time as people write it: "3–5 h", "12 h", "minutes"."""
    if hours is None or hours == "":
        return ""
    lo, hi = (hours[0], hours[-1]) if isinstance(hours, list | tuple) and hours else (hours, hours)
    lo, hi = float(lo), float(hi)
    if hi < 1:
        return "minutes"
    return f"{lo:g} h" if lo == hi else f"{lo:g}–{hi:g} h"


def plan_html(plan: dict) -> str:
    est = "".join(
        f"<tr><td>{escape(str(e.get('tier')))}</td><td>{escape(tier_cost_text(e))}</td>"
        f"<td>{escape(hours_text(e.get('hours', e.get('expected_hours'))))}</td></tr>"
        for e in plan.get("estimates", [])
    )
    return (
        f"<b>restore plan for {escape(str(plan.get('name')))}</b>: {plan.get('files')} files, "
        f"{fmt_bytes(plan.get('raw_bytes'))}; {plan.get('packs')} packs to read, "
        f"{plan.get('cold_packs')} cold packs ({fmt_bytes(plan.get('thaw_bytes'))}) to thaw"
        f"<table><tr><th>tier</th><th>cost</th><th>time</th></tr>{est}</table>"
    )


@magics_class
class ArchiveMagics(Magics):
    @line_magic
    def archive(self, line):
        """Archive files: %archive PATH… [--name N] [--tag k=v] [--class C] [--parent ID] [--dry-run] [--wait]."""
        p = MagicArgumentParser(prog="%archive", add_help=False)
        p.add_argument("paths", nargs="+")
        p.add_argument("--name")
        p.add_argument("--tag", action="append")
        p.add_argument("--class", dest="storage_class", choices=STORAGE_CLASSES)
        p.add_argument("--parent", help="archive whose unchanged files are reused (default: the latest of the same paths)")
        p.add_argument("--dry-run", action="store_true", help="show the monthly cost per class, archive nothing")
        p.add_argument("--wait", action="store_true", help="block until the archive is stored")
        args = p.parse_args(split_line(line))
        body = {"paths": args.paths, "name": args.name, "tags": _kv(args.tag, "--tag"),
                "storage_class": args.storage_class, "dry_run": args.dry_run}
        if args.parent:
            body["parent"] = args.parent
        with lens_errors():
            result = client().request("POST", "archives", json=body)
        if args.dry_run:
            display(HTML(cost_table_html(result.get("costs"))))
            return shown(result)
        task = watch_task(result, wait=args.wait)
        if args.wait and task["status"] != "done":
            raise UsageError(f"archive {task['status']}: {task.get('error')}")
        return shown(task)

    @line_magic
    def archives(self, line):
        """List your archives: %archives [NAME-GLOB] [--path GLOB] [--text WORDS]."""
        p = MagicArgumentParser(prog="%archives", add_help=False)
        p.add_argument("name", nargs="?")
        p.add_argument("--path")
        p.add_argument("--text")
        args = p.parse_args(split_line(line))
        params = {k: v for k, v in {"name": args.name, "path": args.path, "text": args.text}.items() if v}
        with lens_errors():
            found = client().request("GET", "archives", params=params)["archives"]
        rows = "".join(
            f"<tr><td>{escape(str(a.get('name')))}</td><td>{escape(str(a.get('id')))[:12]}</td>"
            f"<td>{escape(str(a.get('created')))}</td><td>{a.get('files')}</td><td>{fmt_bytes(a.get('size'))}</td>"
            f"<td>{escape(str(a.get('storage_class')))}</td></tr>"
            for a in found
        )
        display(HTML(f"<table><tr><th>name</th><th>id</th><th>created</th><th>files</th><th>size</th>"
                     f"<th>class</th></tr>{rows}</table>"))
        return shown(found)

    @line_magic
    def restore(self, line):
        """Restore: %restore ARCHIVE [paths…] --to DIR [--tier bulk|standard|expedited] [--overwrite] [--plan] [--wait]."""
        p = MagicArgumentParser(prog="%restore", add_help=False)
        p.add_argument("archive")
        p.add_argument("paths", nargs="*")
        p.add_argument("--to", required=True, help="directory to restore into (inside your files)")
        p.add_argument("--tier", default=DEFAULT_TIER, choices=RETRIEVAL_TIERS)
        p.add_argument("--overwrite", action="store_true")
        p.add_argument("--plan", action="store_true", help="only show what would be thawed and its cost")
        p.add_argument("--wait", action="store_true")
        args = p.parse_args(split_line(line))
        with lens_errors():
            plan = client().request(
                "POST", f"archives/{args.archive}/plan", json={"paths": args.paths or None, "to": args.to}
            )
        display(HTML(plan_html(plan)))
        if args.plan:
            return shown(plan)
        with lens_errors():
            task = client().request("POST", f"archives/{args.archive}/restore", json={
                "paths": args.paths or None, "to": args.to, "tier": args.tier, "overwrite": args.overwrite,
            })
        task = watch_task(task, wait=args.wait)
        if args.wait and task["status"] != "done":
            raise UsageError(f"restore {task['status']}: {task.get('error')}")
        return shown(task)
