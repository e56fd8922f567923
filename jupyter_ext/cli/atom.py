"""`lens atom ...`: admin helpers for the atom engine (catalog, spec checks, estimates)."""

from __future__ import annotations

import json
import sys


def _catalog(args):
    from jupyter_ext.atom.catalog import load_catalog

    return load_catalog(args.catalog)


def _spec_data(text: str):
    from jupyter_ext.cli.main import CommandError

    if text.startswith("@"):
        with open(text[1:], encoding="utf-8") as f:
            text = f.read()
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise CommandError(f"the spec is not valid JSON: {exc}") from None


def _guard(fn):
    def run(args):
        from jupyter_ext.atom.errors import AtomError
        from jupyter_ext.cli.main import CommandError

        try:
            return fn(args)
        except (AtomError, OSError) as exc:
            raise CommandError(str(exc)) from None
    return run


@_guard
def cmd_apps(args) -> int:
    cat = _catalog(args)
    for app in cat.list():
        print(f"{app['name']:<20} {app['default_version']:<10} {'MPI' if app['mpi'] else '   '} "
              f"{', '.join(app['archs']):<34} {app['display_name']}")
    return 0


@_guard
def cmd_check(args) -> int:
    cat = _catalog(args)
    print(f"ok: {len(cat.names())} apps ({', '.join(cat.names())})")
    return 0


@_guard
def cmd_estimate(args) -> int:
    from jupyter_ext.atom.estimate import estimate
    from jupyter_ext.atom.spec import parse_spec

    cat = _catalog(args)
    spec = parse_spec(_spec_data(args.spec), cat)
    est = estimate(spec, cat)
    if args.json:
        json.dump(est, sys.stdout, indent=2)
        print()
    else:
        print(f"{spec.name}: {est['instance_type']}{' (spot)' if spec.spot else ''} x "
              f"{spec.nodes} node(s) x {spec.array_size} member(s) at "
              f"${est['hourly_rate_micro'] / 1e6:.4f}/h; at most ${est['est_cost_micro'] / 1e6:.2f}, "
              f"expected ${est['expected_cost_micro'] / 1e6:.2f} (price snapshot {est['snapshot']['date']})")
    return 0


def register(subparsers) -> None:
    p = subparsers.add_parser("atom", help="atom HPC jobs: app catalog, spec checks, estimates")
    p.add_argument("--catalog", default=None, help="app catalog YAML (default: hub_config/atom_apps.yaml)")
    sub = p.add_subparsers(dest="atom_command", metavar="ACTION")
    a = sub.add_parser("apps", help="list the app catalog")
    a.set_defaults(func=cmd_apps)
    c = sub.add_parser("check-catalog", help="validate the app catalog")
    c.set_defaults(func=cmd_check)
    e = sub.add_parser("estimate", help="price a job spec (JSON, or @file) without submitting")
    e.add_argument("spec")
    e.add_argument("--json", action="store_true")
    e.set_defaults(func=cmd_estimate)
