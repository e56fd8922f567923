"""``lens archive create|ls|show|restore|check|lifecycle`` over the archive engine."""

from __future__ import annotations

import getpass
import grp
import json
import os
import sys

DEFAULT_REPO_ENV = "LENS_ARCHIVE_REPO"


def _principal():
    from jupyter_ext.archive.repository import Principal

    user = getpass.getuser()
    groups = tuple(sorted({grp.getgrgid(g).gr_name for g in os.getgroups()
                           if _has_group(g)}))
    return Principal(user, groups)


def _has_group(gid: int) -> bool:
    try:
        grp.getgrgid(gid)
        return True
    except KeyError:
        return False


def _engine(args):
    from jupyter_ext.archive.engine import ArchiveEngine

    kwargs = {}
    repo = args.repo or os.environ.get(DEFAULT_REPO_ENV)
    if repo:
        kwargs["repository"] = repo
    for name in ("sse", "kms_key_id"):
        if getattr(args, name, None):
            kwargs[name] = getattr(args, name)
    if getattr(args, "level", None) is not None:
        kwargs["zstd_level"] = args.level
    if getattr(args, "pack_size", None):
        kwargs["pack_size"] = args.pack_size
    if getattr(args, "workers", None):
        kwargs["workers"] = args.workers
    if getattr(args, "poll_interval", None):
        kwargs["poll_interval"] = args.poll_interval
    return ArchiveEngine(**kwargs)


def _owner(args) -> str:
    return args.owner or f"user:{getpass.getuser()}"


def _mb(n: int) -> str:
    return f"{n / 1e6:,.1f} MB"


def _progress_printer(enabled: bool):
    if not enabled:
        return None

    def show(p):
        eta = "-" if p.eta is None else f"{p.eta:.0f}s"
        dedup = "-" if p.dedup_ratio is None else f"{p.dedup_ratio:.2f}x"
        sys.stderr.write(f"\r{p.phase:8} {p.files_done}/{p.files_total} files "
                         f"{_mb(p.bytes_done)}/{_mb(p.bytes_total)} dedup {dedup} "
                         f"{p.mb_per_s:.1f} MB/s eta {eta}   ")
        if p.phase == "done":
            sys.stderr.write("\n")
        sys.stderr.flush()

    return show


def _out(args, data, text: str) -> None:
    print(json.dumps(data, indent=2, default=str) if args.json else text)


def _wrap(fn):
    def run(args):
        from jupyter_ext.archive.errors import ArchiveError
        from jupyter_ext.cli.main import CommandError

        try:
            return fn(args)
        except ArchiveError as exc:
            raise CommandError(str(exc)) from None

    return run


def cmd_create(args):
    from jupyter_ext.archive.engine import parse_pairs
    from jupyter_ext.archive.pricing import format_micro

    eng = _engine(args)
    res = eng.create(args.paths, owner=_owner(args), principal=_principal(),
                     name=args.name or os.path.basename(os.path.abspath(args.paths[0])),
                     tags=parse_pairs(args.tag, "tag"), meta=parse_pairs(args.meta, "meta"),
                     storage_class=args.storage_class, dry_run=args.dry_run,
                     parent=args.parent or "",
                     progress=_progress_printer(args.progress and not args.json))
    p = res["progress"]
    if args.dry_run:
        lines = [f"dry run: {p['files_total']} files, {_mb(p['bytes_total'])}, "
                 f"new {_mb(p['bytes_new'])}, packed {_mb(p['bytes_stored'])}",
                 f"{'class':20} {'objects':>8} {'monthly':>12} {'minimum':>12} {'min days':>8} "
                 f"{'delete@30d':>12}"]
        for row in res["costs"]:
            lines.append(f"{row['storage_class']:20} {row['objects']:>8} "
                         f"{format_micro(row['total_monthly_micro']):>12} "
                         f"{format_micro(row['minimum_charge_micro']):>12} "
                         f"{row['min_days']:>8} "
                         f"{format_micro(row['early_delete_30d_micro']):>12}")
        _out(args, res, "\n".join(lines))
        return 0
    a = res["archive"]
    text = (f"archive {a['id'][:12]} {a['name']}: {a['files']} files, "
            f"{_mb(a['size'])}, added {_mb(a['added_bytes'])} in {p['packs']} packs, "
            f"{p['mb_per_s']:.1f} MB/s")
    skipped = res.get("skipped") or []
    if skipped:  # never silent: what is not in the archive is named
        more = f" (+{len(skipped) - 5} more)" if len(skipped) > 5 else ""
        text += (f"\nskipped {len(skipped)} (unreadable, special files, changed while read, or "
                 f"names that are not UTF-8): {'; '.join(skipped[:5])}{more}")
    _out(args, res, text)
    return 0


def cmd_ls(args):
    from jupyter_ext.archive.engine import parse_pairs

    eng = _engine(args)
    rows = eng.list(owner=_owner(args), principal=_principal(), name=args.name,
                    tags=parse_pairs(args.tag, "tag") or None, since=args.since,
                    until=args.until, path=args.path, text=args.search)
    lines = [f"{r['id'][:12]}  {r['created'][:19]}  {r['name']:24} {r['files']:>7} files "
             f"{_mb(r['size']):>12}  {r['storage_class']:12} "
             f"{' '.join(f'{k}={v}' for k, v in sorted(r['tags'].items()))}" for r in rows]
    _out(args, rows, "\n".join(lines) if lines else "no archives")
    return 0


def cmd_show(args):
    eng = _engine(args)
    res = eng.show(args.archive, owner=_owner(args), principal=_principal())
    lines = [f"{f['type']:7} {oct(f['mode'])[2:]:>5} {f.get('size', 0):>12}  {f['path']}"
             + (f" -> {f['target']}" if f.get("target") else "") for f in res["files"]]
    _out(args, res, "\n".join(lines))
    return 0


def _plan_text(plan: dict) -> str:
    from jupyter_ext.archive.pricing import format_micro

    lines = [f"restore {plan['name']} ({plan['archive'][:12]}): {plan['files']} files, "
             f"{_mb(plan['raw_bytes'])}; {plan['packs']} packs, read {_mb(plan['bytes_to_read'])}",
             f"to thaw: {plan['cold_packs']} objects, {_mb(plan['thaw_bytes'])}"]
    for e in plan["estimates"]:
        lo, hi = e["hours"]
        lines.append(f"  {e['tier']:10} {format_micro(e['cost_micro']):>12}  {lo:g}-{hi:g} h")
    return "\n".join(lines)


def cmd_restore(args):
    from jupyter_ext.cli.main import CommandError

    if not args.plan and not args.to:
        raise CommandError("restore: --to DIR is required (or --plan to only plan)")
    eng = _engine(args)
    plan = eng.plan(args.archive, args.paths, owner=_owner(args), principal=_principal())
    if args.plan:
        _out(args, plan.as_dict(), _plan_text(plan.as_dict()))
        return 0
    if not args.json:  # the plan (packs, bytes to thaw, cost and time per tier) comes first
        print(_plan_text(plan.as_dict()), flush=True)
    # the restore runs this plan: made once, one manifest's entries in memory
    res = eng.restore(args.archive, args.paths, target=args.to, owner=_owner(args),
                      principal=_principal(), tier=args.tier, overwrite=args.overwrite,
                      wait=not args.no_wait, timeout=args.timeout,
                      progress=_progress_printer(args.progress and not args.json), plan=plan)
    del plan
    st = res["state"]
    if st["status"] == "done":
        text = f"restored {st['done_count']} entries to {st['target']}"
    else:
        text = (f"{st['status']}: {st.get('waiting', 0)} pack(s) still thawing; run the same "
                "command again to resume")
    _out(args, res, text)
    return 0


def cmd_check(args):
    eng = _engine(args)
    rep = eng.check(owner=_owner(args), principal=_principal(), read_data=args.read_data)
    d = rep.as_dict()
    lines = [f"{d['archives']} archives, {d['packs']} packs, {d['chunks']} chunks"
             + (f", {d['packs_read']} packs read" if args.read_data else "")]
    lines += [f"warning: {w}" for w in d["warnings"]]
    lines += [f"error: {e}" for e in d["errors"]]
    lines.append("ok" if rep.ok else f"FAILED: {len(d['errors'])} error(s)")
    _out(args, d, "\n".join(lines))
    return 0 if rep.ok else 1


def cmd_lifecycle(args):
    from jupyter_ext.archive import lifecycle

    if args.action == "templates":
        _out(args, {k: v["help"] for k, v in lifecycle.TEMPLATES.items()},
             "\n".join(f"{k:22} {v['help']}" for k, v in lifecycle.TEMPLATES.items()))
        return 0
    eng = _engine(args)
    if args.action == "show":
        rules = eng.store.get_lifecycle()
        _out(args, rules, json.dumps(rules, indent=2, default=str))
        return 0
    from jupyter_ext.cli.main import CommandError

    if not args.template:
        raise CommandError("lifecycle apply: --template is required; one of "
                           + ", ".join(lifecycle.TEMPLATES))
    rules = eng.apply_lifecycle(args.template)
    _out(args, rules, f"applied {args.template} to {eng.store.url}: {len(rules)} rule(s)")
    return 0


def register(subparsers) -> None:
    from jupyter_ext.archive.lifecycle import TEMPLATES
    from jupyter_ext.constants import DEFAULT_TIER, RETRIEVAL_TIERS, STORAGE_CLASSES

    common = __import__("argparse").ArgumentParser(add_help=False)
    common.add_argument("--repo", help=f"directory or s3://bucket/prefix (${DEFAULT_REPO_ENV})")
    common.add_argument("--owner", help="user:NAME or group:NAME (default: you)")
    common.add_argument("--json", action="store_true", help="machine-readable output")

    p = subparsers.add_parser("archive", help="archive results to S3/Glacier and restore them")
    sub = p.add_subparsers(dest="archive_command", metavar="ACTION")

    c = sub.add_parser("create", parents=[common], help="archive files and directories")
    c.add_argument("paths", nargs="+")
    c.add_argument("--name")
    c.add_argument("--tag", action="append", default=[], metavar="K=V")
    c.add_argument("--meta", action="append", default=[], metavar="K=V")
    c.add_argument("--class", dest="storage_class", choices=STORAGE_CLASSES)
    c.add_argument("--level", type=int, help="zstd level (0 = raw)")
    c.add_argument("--pack-size", type=int)
    c.add_argument("--workers", type=int)
    c.add_argument("--sse", choices=["AES256", "aws:kms"])
    c.add_argument("--kms-key-id")
    c.add_argument("--parent", metavar="ID",
                   help="archive whose unchanged files are reused (default: the latest "
                   "archive of the same paths, whatever its name)")
    c.add_argument("--dry-run", action="store_true", help="show the cost per class only")
    c.add_argument("--no-progress", dest="progress", action="store_false")
    c.set_defaults(func=_wrap(cmd_create))

    ls = sub.add_parser("ls", parents=[common], help="list and search archives")
    ls.add_argument("search", nargs="?", help="free text in name, tags, metadata")
    ls.add_argument("--name", help="name glob")
    ls.add_argument("--tag", action="append", default=[], metavar="K=V")
    ls.add_argument("--since", help="ISO date")
    ls.add_argument("--until", help="ISO date")
    ls.add_argument("--path", help="archives containing a path matching this glob")
    ls.set_defaults(func=_wrap(cmd_ls))

    s = sub.add_parser("show", parents=[common], help="list the files of an archive")
    s.add_argument("archive")
    s.set_defaults(func=_wrap(cmd_show))

    r = sub.add_parser("restore", parents=[common], help="plan and run a restore")
    r.add_argument("archive")
    r.add_argument("paths", nargs="*")
    r.add_argument("--to")
    r.add_argument("--tier", choices=RETRIEVAL_TIERS, default=DEFAULT_TIER)
    r.add_argument("--overwrite", action="store_true")
    r.add_argument("--plan", action="store_true", help="only show the plan and costs")
    r.add_argument("--no-wait", action="store_true", help="request thaws and return")
    r.add_argument("--timeout", type=float)
    r.add_argument("--poll-interval", type=float)
    r.add_argument("--no-progress", dest="progress", action="store_false")
    r.set_defaults(func=_wrap(cmd_restore))

    k = sub.add_parser("check", parents=[common], help="verify the repository")
    k.add_argument("--read-data", action="store_true", help="read and verify every pack")
    k.set_defaults(func=_wrap(cmd_check))

    lc = sub.add_parser("lifecycle", parents=[common], help="bucket lifecycle rules")
    lc.add_argument("action", choices=["apply", "show", "templates"])
    lc.add_argument("--template", choices=list(TEMPLATES))
    lc.set_defaults(func=_wrap(cmd_lifecycle))
