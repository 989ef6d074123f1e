"""The `convertly` command: `serve`, `worker` and API key management (`keys`)."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from datetime import UTC, datetime

from convertly.auth import KeyStore
from convertly.errors import ConvertlyError
from convertly.service import build_state
from convertly.settings import Settings, SettingsError


def _keys(settings: Settings) -> KeyStore:
    return build_state(settings)[1]


def _when(ts: float | None) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M") if ts else "-"


def cmd_serve(settings: Settings, args: argparse.Namespace) -> int:
    import uvicorn

    from convertly.app import create_app

    host = args.host or settings.host
    port = args.port or settings.port
    logging.basicConfig(level=settings.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("pyvips").setLevel(logging.WARNING)  # per-operation chatter at INFO
    keys = _keys(settings)
    if keys.active_count() == 0:
        key, record = keys.create("default")
        line = "=" * 72
        print(f"\n{line}\n  No API key existed, so one was created (tenant {record.tenant}).\n"
              f"  It is shown only this once; keep it somewhere safe:\n\n    {key}\n\n"
              f"  Try it:\n    curl -H \"Authorization: Bearer {key}\" \\\n"
              f"      -F files=@photo.jpg -F format=webp -F resize=website \\\n"
              f"      http://{'localhost' if host in ('127.0.0.1', '0.0.0.0') else host}"
              f":{port}/api/convert\n{line}\n", flush=True)
    app = create_app(settings)
    uvicorn.run(app, host=host, port=port, log_level=settings.log_level.lower(),
                timeout_graceful_shutdown=30)
    return 0


def cmd_worker(settings: Settings, args: argparse.Namespace) -> int:
    if not settings.distributed:
        print("convertly worker: set CONVERTLY_BROKER_URL (e.g. redis://127.0.0.1:6379/0); "
              "without it `convertly serve` runs conversions itself.", file=sys.stderr)
        return 2
    from workers.tasks import make_celery

    queues = args.queues or settings.worker_queues
    concurrency = args.concurrency or settings.worker_concurrency
    app = make_celery(settings)
    argv = ["worker", "--queues", queues, "--concurrency", str(concurrency),
            "--loglevel", settings.log_level.upper(), "--hostname",
            f"convertly-{os.getpid()}@%h", "--without-mingle", "--without-gossip"]
    app.worker_main(argv)
    return 0


def cmd_keys_create(settings: Settings, args: argparse.Namespace) -> int:
    key, record = _keys(settings).create(args.name, tenant=args.tenant)
    print(f"Created API key {record.prefix}… named {record.name!r} for tenant {record.tenant}.")
    print("It is shown only this once:")
    print(key)
    return 0


def cmd_keys_list(settings: Settings, args: argparse.Namespace) -> int:
    rows = _keys(settings).list()
    if not rows:
        print("No API keys yet; create one with `convertly keys create --name NAME`.")
        return 0
    print(f"{'PREFIX':<15} {'NAME':<20} {'TENANT':<20} {'CREATED':<17} {'LAST USED':<17} STATE")
    for k in rows:
        state = f"revoked {_when(k.revoked_at)}" if k.revoked_at else "active"
        print(f"{k.prefix:<15} {k.name[:20]:<20} {k.tenant:<20} {_when(k.created_at):<17} "
              f"{_when(k.last_used_at):<17} {state}")
    return 0


def cmd_keys_revoke(settings: Settings, args: argparse.Namespace) -> int:
    record = _keys(settings).revoke(args.prefix)
    print(f"Revoked API key {record.prefix}… ({record.name}).")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="convertly", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the API server (embedded executor by default)")
    serve.add_argument("--host", help="address to bind (default CONVERTLY_HOST or 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default CONVERTLY_PORT or 8000)")
    serve.set_defaults(func=cmd_serve)

    worker = sub.add_parser("worker", help="run a Celery worker (distributed mode)")
    worker.add_argument("--queues", help="comma-separated queues (default "
                        "CONVERTLY_WORKER_QUEUES: image,media,archive)")
    worker.add_argument("--concurrency", type=int, help="worker processes (default "
                        "CONVERTLY_WORKER_CONCURRENCY or one per core)")
    worker.set_defaults(func=cmd_worker)

    keys = sub.add_parser("keys", help="manage API keys")
    keys_sub = keys.add_subparsers(dest="keys_command", required=True)
    create = keys_sub.add_parser("create", help="create a key; prints it as the last line")
    create.add_argument("--name", required=True, help="a label for the key")
    create.add_argument("--tenant", help="share an existing tenant (default: a new tenant)")
    create.set_defaults(func=cmd_keys_create)
    listing = keys_sub.add_parser("list", help="list keys (prefixes only)")
    listing.set_defaults(func=cmd_keys_list)
    revoke = keys_sub.add_parser("revoke", help="revoke the key with this prefix")
    revoke.add_argument("prefix")
    revoke.set_defaults(func=cmd_keys_revoke)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        print(f"convertly: invalid setting: {exc}", file=sys.stderr)
        return 2
    try:
        code: int = args.func(settings, args)
    except ConvertlyError as exc:
        print(f"convertly: {exc.message}", file=sys.stderr)
        return 1
    return code


if __name__ == "__main__":
    sys.exit(main())
