"""`lens workshop create|list|extend|close|export`: workshop and class hubs.

The CLI talks to the running hub's REST API with the `lens-admin` service
token (state/secrets/lens-admin.token, made by `lens hub run`), and to the
lens database directly for accounts and workshop settings.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from jupyter_ext.cli.main import CommandError
from jupyter_ext.cli.secret_input import add_secret_options, read_secret
from jupyter_ext.paths import config_file, state_dir


def register(subparsers) -> None:
    ws = subparsers.add_parser("workshop", help="workshop and class hubs: bulk temporary accounts")
    ws.add_argument("--state", default=os.environ.get("LENS_STATE_DIR", str(state_dir())))
    ws.add_argument("--hub-url", default=os.environ.get("LENS_BIND_URL", "http://127.0.0.1:8000"),
                    help="the hub's public URL (default: $LENS_BIND_URL or http://127.0.0.1:8000)")
    # An admin-capable hub token (default: $LENS_ADMIN_TOKEN, else the lens-admin service
    # token in STATE/secrets), from a prompt, stdin or a file: never from argv.
    add_secret_options(ws, "hub token", "token")
    sub = ws.add_subparsers(dest="workshop_command", metavar="ACTION")

    create = sub.add_parser("create", help="create (or complete) a workshop; safe to re-run")
    create.add_argument("name")
    who = create.add_mutually_exclusive_group(required=True)
    who.add_argument("--seats", type=int, help="number of anonymous seats NAME-01..NAME-NN")
    who.add_argument("--roster", help="CSV with a 'username' column (optional display_name, email)")
    create.add_argument("--expires", required=True, help="YYYY-MM-DD (through that day, UTC), YYYY-MM-DDTHH:MM, or +N[smhd]")
    create.add_argument("--profiles", default="lab", help="profiles students may start, comma-separated (default: lab)")
    create.add_argument("--budget-per-seat", help="USD per seat for the whole workshop")
    create.add_argument("--content", help="course material: GIT_URL[@branch-or-tag], pulled by nbgitpuller")
    create.add_argument("--instructors", help="hub user names of the instructors, comma-separated")
    create.add_argument("--adopt", action="store_true",
                        help="take in an existing hub group and existing users named as seats: they keep "
                             "their passwords and are never disabled, expired or archived by the workshop "
                             "(without it, create refuses them and changes nothing)")
    add_prewarm_options(create)
    create.add_argument("--prewarm", action="store_true",
                        help="start every seat's server now (paced by the hub's start line), held "
                             "until --starts plus --grace; on Kubernetes, plan the class's user "
                             "placeholders instead (see prewarm)")
    create.set_defaults(func=cmd_create)

    warm = sub.add_parser("prewarm", help="start the seats' servers before the class (paced), "
                                          "so students land on a running server; on Kubernetes, scale "
                                          "z2jh's user placeholders for the class (run in the lens "
                                          "service pod)")
    warm.add_argument("name")
    add_prewarm_options(warm)
    warm.set_defaults(func=cmd_prewarm)

    ls = sub.add_parser("list", help="list workshops")
    ls.set_defaults(func=cmd_list)

    extend = sub.add_parser("extend", help="move a workshop's expiry")
    extend.add_argument("name")
    extend.add_argument("--expires", required=True)
    extend.set_defaults(func=cmd_extend)

    close = sub.add_parser("close", help="stop servers, disable accounts, report cost per seat")
    close.add_argument("name")
    close.add_argument("--archive", action="store_true", help="archive each seat's home (tar.zst) first")
    close.set_defaults(func=cmd_close)

    export = sub.add_parser("export", help="the workshop, its seats and costs as JSON")
    export.add_argument("name")
    export.add_argument("--output", "-o", help="write to this file instead of stdout")
    export.set_defaults(func=cmd_export)
    share = sub.add_parser("share", help="share an instructor's server with every seat (the workshop's group)")
    share.add_argument("name")
    share.add_argument("--from", dest="instructor", required=True, metavar="INSTRUCTOR",
                       help="the instructor (one of the workshop's --instructors) whose default server is shared")
    share.add_argument("--revoke", action="store_true", help="take the seats' access away instead")
    share.set_defaults(func=cmd_share)
    ws.set_defaults(func=lambda args: ws.print_help() or 1)


def _state(args):
    from jupyter_ext.hub.state import ensure_state

    return ensure_state(args.state)


def _hub(args, state):
    from jupyter_ext.cli.hubapi import HubAPI

    token = read_secret(args, "hub token", "token") or os.environ.get("LENS_ADMIN_TOKEN")
    if not token:
        try:
            token = state.token("lens-admin")
        except FileNotFoundError:
            raise CommandError("no lens-admin token in the state directory: "
                               "use --token-file PATH, --token-stdin or --token (prompt)") from None
    return HubAPI(args.hub_url, token)


def _known_profiles() -> list[str]:
    from spawners.profiles import load_catalog

    return [p.slug for p in load_catalog(str(config_file("profiles.yaml"))).profiles]


def minutes_option(flag: str):
    """An argparse type: N minutes, Nm or Nh (0 to 24 h); a bad value is argparse's usage error."""
    import argparse

    from jupyter_ext.workshop.model import WorkshopError, parse_minutes

    def parse(text: str) -> int:
        try:
            return parse_minutes(text, flag)
        except WorkshopError as exc:
            raise argparse.ArgumentTypeError(str(exc).removeprefix(f"{flag} ")) from None

    return parse


def add_prewarm_options(parser) -> None:
    parser.add_argument("--starts", help="when the class starts: YYYY-MM-DDTHH:MM (UTC) or +N[smhd]; prewarmed "
                                         "servers are not culled before it plus --grace (default: now)")
    parser.add_argument("--grace", type=minutes_option("--grace"), default=30,
                        help="minutes (N, Nm or Nh; at most 24 h) after --starts that prewarmed servers are "
                             "still kept (default 30)")
    parser.add_argument("--profile", help="profile to prewarm (default: the workshop's first)")
    parser.add_argument("--lead", type=minutes_option("--lead"), default=20,
                        help="Kubernetes: minutes (N, Nm or Nh; at most 24 h) before --starts that the user "
                             "placeholders are scaled up, for new nodes to join and pull the image (default 20)")


def run_prewarm(args, state, ws) -> int:
    from datetime import timedelta

    from jupyter_ext.cli.hubapi import HubAPIError
    from jupyter_ext.workshop import model, prewarm

    now = model.utcnow()
    try:
        starts = model.parse_starts(args.starts, now)
    except model.WorkshopError as exc:
        raise CommandError(str(exc)) from None
    profile = args.profile or (ws.profiles[0] if ws.profiles else "lab")
    if ws.profiles and profile not in ws.profiles:
        raise CommandError(f"--profile {profile!r} is not one of the workshop's: {', '.join(ws.profiles)}")
    if os.environ.get("LENS_DEPLOYMENT") == "k8s":
        return run_prewarm_k8s(args, state, ws, profile, starts, now)
    if not ws.profiles and profile not in (known := _known_profiles()):
        # every seat's start would fail with the hub's 400 otherwise
        raise CommandError(f"--profile {profile!r}: no such profile; the catalog's: {', '.join(known)}")
    hold = starts + timedelta(minutes=args.grace)
    seats = list(ws.seats)
    hub = _hub(args, state)
    try:
        hub.check()  # reachable, and the token is an admin's: no holds written for servers never asked for
    except HubAPIError as exc:
        raise CommandError(hub_trouble(exc)) from None
    # the hold comes first: a server must not be culled while the others still start
    prewarm.write_holds(state.root, dict.fromkeys(seats, hold), now)
    print(f"prewarming {len(seats)} seat(s) of {ws.name} with {profile}; kept until "
          f"{hold:%Y-%m-%d %H:%M} UTC", flush=True)

    def progress(ready, waiting, total):
        print(f"\r  {ready} of {total} ready, {waiting} starting or waiting for a start slot ", end="", flush=True)

    try:
        outcome = prewarm.prewarm(hub, seats, profile, on_progress=progress)
    except HubAPIError as exc:  # unreachable, or a token it does not take
        print()
        raise CommandError(hub_trouble(exc)) from None
    print()
    failed = {s: o for s, o in outcome.items() if o.startswith("failed")}
    for seat, why in failed.items():
        print(f"  {seat}: {why}")
    print(f"  {len(outcome) - len(failed)} of {len(seats)} running")
    return 1 if failed else 0


def run_prewarm_k8s(args, state, ws, profile_slug, starts, now) -> int:
    """Kubernetes: record a placeholder plan; the lens service scales z2jh's user
    placeholders up at starts - lead and back at starts + grace (no server is started)."""
    from datetime import timedelta

    from jupyter_ext.workshop import placeholders as ph

    spec_json = os.environ.get(ph.SPEC_ENV)
    if not spec_json:
        raise CommandError(
            f"on Kubernetes, run this in the lens service's pod, which applies the plan (${ph.SPEC_ENV} is set "
            "there when the chart's lens.prewarm.enabled is true): kubectl exec -n NAMESPACE deploy/lens-service "
            f"-- lens workshop prewarm {ws.name} --starts ...")
    try:
        spec = ph.PlaceholderSpec.from_json(spec_json)
    except ph.PlaceholderError as exc:
        raise CommandError(str(exc)) from None
    from spawners.profiles import load_catalog

    profile = load_catalog(str(config_file("profiles.yaml"))).get(profile_slug)
    if profile is None:
        raise CommandError(f"no profile {profile_slug!r} in the catalog")
    problem = ph.placement_problem(profile.slug, dict(profile.node_selector), profile.gpu_count, spec)
    if problem:
        raise CommandError(problem)
    count = ph.placeholders_for(len(ws.seats), profile.cpu.guarantee, profile.memory.guarantee, spec)
    try:
        plan = ph.make_plan(ws.name, profile.slug, len(ws.seats), count, starts=starts,
                            lead=timedelta(minutes=args.lead), grace=timedelta(minutes=args.grace), spec=spec)
    except ph.PlaceholderError as exc:
        raise CommandError(str(exc)) from None
    plans = ph.write_plan(state.root, plan, now)
    def room(cpu, memory) -> str:
        return f"{float(cpu or 0):g} CPU, {(memory or 0) / 1e9:g} GB"

    print(f"prewarm plan for {ws.name}: {count} user placeholder(s) for {len(ws.seats)} seat(s) of "
          f"{profile.slug} ({room(profile.cpu.guarantee, profile.memory.guarantee)} each; a placeholder "
          f"holds {room(spec.cpu, spec.memory)})")
    print(f"  scaled up {plan.scale_up_at:%Y-%m-%d %H:%M} UTC (--lead {args.lead} min before the start), "
          f"back down {plan.scale_down_at:%Y-%m-%d %H:%M} UTC (--grace {args.grace} min after)")
    print(f"  StatefulSet {spec.namespace}/{spec.statefulset}: {spec.base_replicas} always, "
          f"{ph.desired_replicas(plans, spec, plan.scale_up_at)} at the scale-up (all plans; at most "
          f"{spec.max_replicas}); the lens service applies it within a minute of each time")
    if profile.image not in spec.prepulled_images:
        print(f"  warning: {profile.image} is not among the continuous pre-puller's images "
              "(jupyterhub.prePuller.extraImages): new nodes will pull it when the first student starts",
              file=sys.stderr)
    return 0


def cmd_prewarm(args) -> int:
    from jupyter_ext.hub.state import StateDir
    from jupyter_ext.workshop.store import WorkshopStore

    # On Kubernetes it runs in the lens service pod as the service's user: its state
    # directory is the service's (a PVC root it may not chmod), with no hub secrets to make.
    state = StateDir(Path(args.state).resolve()) if os.environ.get("LENS_DEPLOYMENT") == "k8s" else _state(args)
    ws = WorkshopStore.from_url(state.lens_db_url).get(args.name)
    if ws is None:
        raise CommandError(f"no workshop {args.name!r}")
    if not ws.active():
        raise CommandError(f"workshop {ws.name!r} is {ws.state()}: nothing to prewarm")
    return run_prewarm(args, state, ws)


def cmd_create(args) -> int:
    from jupyter_ext.accounts import USERNAME_RE
    from jupyter_ext.cli.hubapi import HubAPIError
    from jupyter_ext.workshop import model
    from jupyter_ext.workshop.content import parse_content
    from jupyter_ext.workshop.ops import create_workshop
    from jupyter_ext.workshop.roles import role_name
    from jupyter_ext.workshop.roster import RosterError, parse_roster, seat_names

    try:
        name = model.validate_name(args.name)
        expires = model.parse_expiry(args.expires)
        profiles = model.check_profiles(
            model.parse_list(args.profiles, "--profiles", model.NAME_RE), _known_profiles()
        )
        budget = model.parse_usd(args.budget_per_seat)
        repo, ref = parse_content(args.content)
        instructors = model.parse_list(args.instructors, "--instructors", USERNAME_RE)
        if args.prewarm:
            model.parse_starts(args.starts)  # refused before the workshop is made, not after
        if args.roster:
            try:
                text = Path(args.roster).read_text()
            except OSError as exc:
                raise CommandError(f"--roster: {exc}") from None
            seats = parse_roster(text, args.roster)
        else:
            seats = seat_names(name, args.seats)
    except (model.WorkshopError, RosterError, ValueError) as exc:
        raise CommandError(str(exc)) from None
    ws = model.Workshop(
        name=name, expires_at=expires, profiles=profiles, budget_per_seat_micro=budget,
        content_repo=repo, content_ref=ref, instructors=instructors,
    )
    state = _state(args)
    try:
        res = create_workshop(
            hub=_hub(args, state), state_root=state.root, lens_db_url=state.lens_db_url,
            public_url=args.hub_url, ws=ws, seats=seats, adopt=args.adopt,
        )
    except (model.WorkshopError, HubAPIError) as exc:
        raise CommandError(str(exc)) from None
    w = res.workshop
    print(f"workshop {w.name}: {len(w.seats)} seat(s), expires {w.expires_at:%Y-%m-%d %H:%M} UTC, "
          f"profiles {', '.join(w.profiles) or 'all'}")
    group = "created" if res.group_created else "adopted" if res.adopted_group else "exists"
    print(f"  hub group:     {group}")
    if res.outsiders:
        print(f"  not seats:     {', '.join(res.outsiders)} (group members: no instructor access, "
              "no workshop rules)")
    print(f"  accounts:      {len(res.created_accounts)} created, {len(res.existing_accounts)} unchanged")
    if res.adopted_users:
        print(f"  adopted:       {', '.join(res.adopted_users)} (existing accounts: password unchanged, "
              "never disabled or expired by the workshop)")
    print(f"  budget:        {model.format_usd(w.budget_per_seat_micro)} per seat; {res.budget}")
    print(f"  sheet (CSV):   {res.csv_path}")
    print(f"  sheet (print): {res.html_path}")
    if res.content_link:
        print(f"  content link:  {res.content_link}")
    for inst, password in res.instructor_passwords.items():
        print(f"  instructor account created: {inst} / {password}")
    for inst in res.existing_instructors:
        print(f"  instructor {inst}: existing hub user, no password set")
    if res.role_active is False:
        print(f"  NOTE: restart the hub to activate the instructor role {role_name(w.name)!r} "
              "(JupyterHub loads roles only at start; user servers keep running)")
    if args.prewarm:
        return run_prewarm(args, state, w)
    return 0


def cmd_list(args) -> int:
    from jupyter_ext.workshop.model import format_usd
    from jupyter_ext.workshop.store import WorkshopStore

    rows = WorkshopStore.from_url(_state(args).lens_db_url).list()
    print(f"{'name':16} {'state':8} {'seats':>5} {'expires (UTC)':17} {'per seat':>9} profiles")
    for w in rows:
        expires = f"{w.expires_at:%Y-%m-%d %H:%M}" if w.expires_at else "-"
        print(f"{w.name:16} {w.state():8} {len(w.seats):>5} {expires:17} "
              f"{format_usd(w.budget_per_seat_micro):>9} {','.join(w.profiles) or 'all'}")
    return 0


def cmd_extend(args) -> int:
    from jupyter_ext.workshop.model import WorkshopError, parse_expiry
    from jupyter_ext.workshop.ops import extend_workshop

    try:
        ws = extend_workshop(lens_db_url=_state(args).lens_db_url, name=args.name,
                             expires_at=parse_expiry(args.expires))
    except WorkshopError as exc:
        raise CommandError(str(exc)) from None
    print(f"workshop {ws.name}: {len(ws.seats)} seat(s) now expire {ws.expires_at:%Y-%m-%d %H:%M} UTC")
    return 0


def _job_canceller(state):
    """Cancel seats' jobs directly at their backends, from this machine.

    The backends are configured like the lens service's (``LENS_SERVICE_CONFIG``,
    and the state directory's atom-local / atom-slurm folders), so on the local
    stack this is the same LocalBackend / Slurm the service uses. Job records and
    charges stay with the service: its next refresh records CANCELLED and charges.
    """
    import asyncio

    from traitlets.config import Config, PyFileConfigLoader

    from jupyter_ext.atom.admin import cancel_jobs_of
    from jupyter_ext.atom.backends.factory import make_backend
    from jupyter_ext.db.engine import make_engine

    config = Config()
    path = os.environ.get("LENS_SERVICE_CONFIG")
    if path:
        config.merge(PyFileConfigLoader(os.path.basename(path), os.path.dirname(path) or ".").load_config())
    for cls, folder in (("LocalBackend", "atom-local"), ("SlurmBackend", "atom-slurm")):
        if not config[cls].get("state_dir"):
            config[cls].state_dir = str(Path(state.root) / folder)

    def cancel(seats: list[str]):
        engine = make_engine(state.lens_db_url)  # busy timeout: the service writes too
        report = asyncio.run(cancel_jobs_of(engine, seats, lambda name: make_backend(name, config=config)))
        return report.cancelled, report.problems

    return cancel


def cmd_close(args) -> int:
    from jupyter_ext.cli.hubapi import HubAPIError
    from jupyter_ext.workshop.model import WorkshopError, format_usd
    from jupyter_ext.workshop.ops import close_workshop

    state = _state(args)
    try:
        res = close_workshop(hub=_hub(args, state), state_root=state.root, lens_db_url=state.lens_db_url,
                             name=args.name, archive=args.archive, cancel_jobs=_job_canceller(state))
    except (WorkshopError, HubAPIError) as exc:
        raise CommandError(str(exc)) from None
    jobs = sum(len(v) for v in res.jobs_cancelled.values())
    print(f"workshop {args.name} closed: {len(res.disabled)} account(s) disabled, "
          f"{len(res.stopped)} server(s) stopped, {jobs} job(s) cancelled")
    if res.kept:
        print(f"adopted account(s) kept as they were, removed from the workshop: {', '.join(res.kept)}")
    for problem in res.problems:
        print(f"warning: {problem}", file=sys.stderr)
    print(f"{'seat':24} {'cost':>10}  archive")
    for seat, micro in sorted(res.costs.items()):
        if seat in res.kept:
            note = "(adopted: kept)"
        else:
            archive = res.archives.get(seat, "") if args.archive else ""
            note = archive or ("(no home)" if args.archive else "")
        print(f"{seat:24} {format_usd(micro):>10}  {note}")
    print(f"{'total':24} {format_usd(sum(res.costs.values())):>10}")
    return 0


def cmd_export(args) -> int:
    from jupyter_ext.workshop.model import WorkshopError
    from jupyter_ext.workshop.ops import export_workshop

    try:
        data = export_workshop(lens_db_url=_state(args).lens_db_url, name=args.name, public_url=args.hub_url)
    except WorkshopError as exc:
        raise CommandError(str(exc)) from None
    text = json.dumps(data, indent=2)
    if args.output:
        Path(args.output).write_text(text + "\n")
        print(f"wrote {args.output}")
    else:
        print(text)
    return 0


def cmd_share(args) -> int:
    """Seats open /user/INSTRUCTOR/ (read along, or edit together with collaboration on)."""
    from jupyter_ext.cli.hubapi import HubAPIError
    from jupyter_ext.workshop.sharing import share_refusal
    from jupyter_ext.workshop.store import WorkshopStore

    state = _state(args)
    ws = WorkshopStore.from_url(state.lens_db_url).get(args.name)
    why = share_refusal(ws, args.name, args.instructor, revoke=args.revoke)
    if why:
        raise CommandError(why)
    hub = _hub(args, state)
    try:
        if args.revoke:
            hub.hub.revoke_share(args.instructor, "", group=ws.name)
            print(f"workshop {ws.name}: seats no longer reach /user/{args.instructor}/")
        else:
            hub.hub.share_server(args.instructor, "", group=ws.name)
            print(f"workshop {ws.name}: {len(ws.seats)} seat(s) may open /user/{args.instructor}/ "
                  f"(revoke: lens workshop share {ws.name} --from {args.instructor} --revoke)")
    except HubAPIError as exc:
        if exc.status == 404:
            raise CommandError(f"{args.instructor} has no server yet: start it once, then share "
                               f"({exc.message})") from None
        raise CommandError(hub_trouble(exc)) from None
    return 0


def hub_trouble(exc) -> str:
    """A failed hub call in the user's terms: an address problem says which setting to check."""
    if exc.unreachable or exc.timed_out:
        return f"{exc.message}; is --hub-url (default $LENS_BIND_URL) the hub's address, and is it up?"
    return f"the hub refused: {exc.message}"
