"""``lens prices``: show the price snapshot, refresh it from the AWS Pricing API."""

from __future__ import annotations

import json
import os
from pathlib import Path

from jupyter_ext.cli.main import CommandError


def make_pricing_client():
    import boto3

    # The Pricing API lives in us-east-1 (also eu-central-1, ap-south-1), whatever region is priced.
    return boto3.client("pricing", region_name=os.environ.get("LENS_PRICING_REGION", "us-east-1"))


def make_ec2_client(region: str):
    import boto3

    return boto3.client("ec2", region_name=region)


def _csv(value: str | None) -> list[str] | None:
    return [v.strip() for v in value.split(",") if v.strip()] if value else None


def cmd_refresh(args) -> int:
    from botocore.exceptions import BotoCoreError, ClientError

    from jupyter_ext.costs.catalog import PriceCatalog, default_snapshot_path
    from jupyter_ext.costs.refresh import refresh_snapshot

    try:
        base = PriceCatalog.load(args.base).data
    except (OSError, ValueError) as exc:
        raise CommandError(f"--base: cannot read price snapshot: {exc}") from None
    try:
        snap = refresh_snapshot(
            base, make_pricing_client(), None if args.no_spot else make_ec2_client,
            regions=_csv(args.regions), instance_types=_csv(args.types))
    except (BotoCoreError, ClientError) as exc:
        raise CommandError(f"AWS call failed: {exc}") from None
    out = Path(args.output) if args.output else default_snapshot_path()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(out.suffix + ".tmp")
    tmp.write_text(json.dumps(snap, indent=1) + "\n", "utf-8")
    tmp.chmod(0o644)  # user servers read it too (their archive estimates)
    tmp.replace(out)
    for region, c in snap["refreshed"].items():
        print(f"{region}: {c['ec2']} instance prices, gp3 {', '.join(c['ebs_gp3']) or '-'}, "
              f"{len(c['s3_storage'])} S3 classes, {c['spot']} spot prices"
              + (f"; kept old for {', '.join(c['ec2_missing'])}" if c["ec2_missing"] else ""))
    print(f"wrote {out} ({snap['date']}; {snap['source']})")
    print("Each process loads its prices once: restart the hub (its services and the Dask "
          "gateway) and user servers to quote and charge these prices.")
    return 0


def cmd_show(args) -> int:
    from jupyter_ext.costs.catalog import PriceCatalog, PriceNotFound

    cat = PriceCatalog.load(args.snapshot, region=args.region)
    try:
        ec2 = {t: cat.instance(t) for t in cat.instance_types()
               if not args.family or t.split(".")[0] == args.family}
        s3 = {c: cat.s3(c) for c in cat.storage_classes()}
        dask = {k: str(v) for k, v in cat.dask().items()}
    except PriceNotFound as exc:
        raise CommandError(str(exc)) from None
    if args.json:
        print(json.dumps({"snapshot": cat.info.as_dict(), "region": args.region, "ec2": ec2,
                          "ebs": cat.ebs("gp3"), "s3": s3, "dask": dask}, indent=1))
        return 0
    print(f"{cat.info.label}, region {args.region} [{cat.info.origin}]")
    print(f"{'instance':<16} {'$/h':>9} {'vCPU':>5} {'GiB':>6} {'GPU':>4}")
    for t, e in ec2.items():
        print(f"{t:<16} {e['ondemand_hour']:>9} {e.get('vcpu', ''):>5} {e.get('memory_gib', ''):>6} "
              f"{e.get('gpus', 0):>4}")
    print(f"EBS gp3: ${cat.ebs('gp3')['gb_month']}/GB-month")
    print(f"Dask worker: ${dask['core_hour']}/core-h, ${dask['gib_hour']}/GiB-h, "
          f"${dask['gpu_hour']}/GPU-h")
    print(f"{'S3 class':<20} {'$/GB-mo':>8} {'min days':>8} {'retrieval $/GB':>14}")
    for c, e in s3.items():
        print(f"{c:<20} {e['gb_month']:>8} {e['min_storage_days']:>8} {e['retrieval_gb']:>14}")
    return 0


def register(subparsers) -> None:
    p = subparsers.add_parser("prices", help="AWS price snapshot used for every estimate")
    sub = p.add_subparsers(dest="prices_command", metavar="ACTION")
    r = sub.add_parser("refresh", help="update the snapshot from the AWS Pricing API and spot history")
    r.add_argument("--regions", help="comma-separated regions (default: those in the snapshot)")
    r.add_argument("--types", help="comma-separated instance types (default: those in the snapshot)")
    r.add_argument("--no-spot", action="store_true", help="skip EC2 spot price history")
    r.add_argument("--base", help="snapshot to start from (default: the current one)")
    r.add_argument("--output", help="where to write (default: $LENS_PRICES_FILE or $LENS_STATE_DIR/prices.json)")
    r.set_defaults(func=cmd_refresh)
    s = sub.add_parser("show", help="print the prices of the current snapshot")
    s.add_argument("--region", default="us-east-1")
    s.add_argument("--family", help="only this instance family, e.g. m7i")
    s.add_argument("--snapshot", help="a snapshot file (default: the current one)")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_show)
    p.set_defaults(func=lambda _a: p.print_help() or 1)
