"""The `convertly` command: `serve`, `worker`, `workers` and API key management (`keys`) on
the server; `convert`, `jobs` and `files` as a client of a running server (convertly.commands)."""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from convertly_client import ClientError

from convertly import commands, fields
from convertly.errors import (
    BrokerUnavailableError,
    ConvertlyError,
    InvalidRequestError,
    NotFoundError,
    StateMisconfiguredError,
    StateUnavailableError,
    StorageMisconfiguredError,
    StorageUnavailableError,
)
from convertly.models import FORMAT_ALIASES, OutputFormat
from convertly.settings import Settings, SettingsError, parse_port, shown
from convertly.state.sqlite.migrations import SchemaTooNewError

# The server commands (serve, worker, workers, keys) import the server's modules when they
# run, not here: the client commands (convert, compress, jobs, files) load none of them
# (starlette, pyvips, celery, redis, ...), so they start fast on any machine.
if TYPE_CHECKING:
    from convertly.auth import ApiKeys
    from convertly.state.records import ApiKey
    from convertly.storage.base import Storage


def _keys(settings: Settings) -> ApiKeys:
    from convertly.auth import ApiKeys
    from convertly.state import build_state

    _check_data_dir(settings)
    return ApiKeys(build_state(settings).keys)


def _check_data_dir(settings: Settings) -> None:
    """Stop start-up with one line when the data directory cannot be created or written (the
    job database, the server secret and scratch files live there, in both modes)."""
    import tempfile

    path = settings.data_dir
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as exc:
        raise SettingsError(
            f"CONVERTLY_DATA_DIR: expected a directory this user can create and write to, got "
            f"{shown(str(path))} ({exc.strerror or type(exc).__name__})") from None


def _port_option(raw: str | None, default: int) -> int:
    if raw is None:
        return default
    try:
        return parse_port(raw)
    except ValueError as exc:
        raise commands.UsageError(f"--port: {exc}, got {shown(raw)}") from None


def _check_storage(storage: Storage) -> None:
    """Stop start-up when the storage refuses this server's credentials (it raises
    StorageMisconfiguredError). A storage that is down does not: it recovers by itself."""
    try:
        storage.check()
    except StorageMisconfiguredError:
        raise
    except StorageUnavailableError:
        pass  # logged by the storage; requests get 503 with a retry hint until it is back


class RedisRefusedError(Exception):
    """A Redis the settings name refuses this server (a wrong or missing password, protected
    mode): start-up stops, since no retry helps. The message names the setting and the URL
    without its password."""

    def __init__(self, url: str, setting: str, reason: str) -> None:
        super().__init__(f"Redis at {_without_credentials(url)} ({setting}) refuses this "
                         f"server: {reason}")


def _redis_settings(settings: Settings) -> list[tuple[str, str]]:
    """(URL, setting name) of each Redis the server uses: the broker's, and the state's when
    it is another one."""
    urls = [(settings.broker_url, "CONVERTLY_BROKER_URL")]
    if settings.state_url and settings.state_url != settings.broker_url:
        urls.append((settings.state_url, "CONVERTLY_STATE_URL"))
    return urls


def _check_redis(settings: Settings) -> None:
    """Stop start-up when a Redis refuses this server (RedisRefusedError), or when redis-py
    cannot use a URL the settings' check let through (an option of its query: SettingsError).
    A Redis that does not answer does not stop it here: a worker waits for it, `serve` says
    so later."""
    import redis

    from convertly.state.redis.client import connect, refusal

    for url, setting in _redis_settings(settings):
        try:
            client = connect(url)
            try:
                client.ping()
            finally:
                client.close()
        except redis.RedisError as exc:
            reason = refusal(exc)
            if reason is not None:
                raise RedisRefusedError(url, setting, reason) from exc
        except (ValueError, TypeError) as exc:  # parse_url's value errors, unknown options
            reason = (str(exc).rstrip(".") if isinstance(exc, ValueError)
                      else "an option in its query Redis does not know")
            raise SettingsError(f"{setting}: expected a URL Redis can use ({reason}), got "
                                f"{shown(url)}") from None


def _when(ts: float | None) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M") if ts else "-"


def cmd_serve(settings: Settings, args: argparse.Namespace) -> int:
    host = args.host or settings.host
    port = _port_option(args.port, settings.port)
    _check_data_dir(settings)

    import uvicorn

    from convertly import logs, tracing
    from convertly.app import create_app
    from convertly.connections import ConnectionLimits, uvicorn_options
    from convertly.service import build_services
    from convertly.storage import build_storage

    _check_serve_args(settings, args)
    # One format for the app's lines and uvicorn's (whose own access log is replaced by
    # the app's access line: route template, duration, tenant, request id).
    logs.configure(settings.log_level, settings.log_format)
    tracing.check(settings)
    # One probe of the storage at start-up: this check (which creates the bucket).
    storage = build_storage(settings, probe=False)
    _check_storage(storage)
    if settings.distributed:
        _check_redis(settings)
    services = build_services(settings, storage=storage)
    keys = services.keys
    if keys.active_count() == 0:
        scheme = "https" if args.ssl_certfile else "http"
        key, record = keys.create("default")
        line = "=" * 72
        print(f"\n{line}\n  No API key existed, so one was created (tenant {record.tenant}).\n"
              f"  It is shown only this once; keep it somewhere safe:\n\n    {key}\n\n"
              f"  Try it:\n    curl -H \"Authorization: Bearer {key}\" \\\n"
              f"      -F files=@photo.jpg -F format=webp -F resize=website \\\n"
              f"      {scheme}://{'localhost' if host in ('127.0.0.1', '0.0.0.0') else host}"
              f":{port}{args.root_path}/api/convert\n{line}\n", flush=True)
    options = {**_uvicorn_serve_options(settings, args),
               **uvicorn_options(ConnectionLimits.from_settings(settings))}
    if args.workers > 1:
        # Each process imports the app and its protocol by name and reads the same settings.
        uvicorn.run(APP_FACTORY, factory=True, workers=args.workers, host=host, port=port,
                    **{**options, "http": "convertly.connections:SettingsProtocol"})
        return 0
    app = create_app(settings, services=services)
    uvicorn.run(app, host=host, port=port, **options)
    return 0


# The app factory ASGI servers (and `convertly serve --workers N`) import.
APP_FACTORY = "convertly.app:create_app"

# Why `--workers N` needs distributed mode, in the error and the README.
EMBEDDED_WORKERS = (
    "--workers {n} runs {n} API processes, which needs distributed mode "
    "(CONVERTLY_BROKER_URL): in embedded mode each process would run a conversion pool and a "
    "watchdog of its own over one SQLite database, and requeue the files the others hold. "
    "For more conversion processes set CONVERTLY_WORKERS instead.")


def _check_serve_args(settings: Settings, args: argparse.Namespace) -> None:
    """Refuse what uvicorn would only report with a traceback, or not at all."""
    if args.workers > 1 and not settings.distributed:
        raise commands.UsageError(EMBEDDED_WORKERS.format(n=args.workers))
    if bool(args.ssl_certfile) != bool(args.ssl_keyfile):
        raise commands.UsageError("--ssl-certfile and --ssl-keyfile go together: give both "
                                  "(the certificate chain and its private key, PEM files).")
    for flag, path in (("--ssl-certfile", args.ssl_certfile),
                       ("--ssl-keyfile", args.ssl_keyfile), ("--log-config", args.log_config)):
        if path and not os.access(path, os.R_OK):
            raise commands.UsageError(f"{flag} {path}: no readable file there.")


def _uvicorn_serve_options(settings: Settings, args: argparse.Namespace) -> dict[str, Any]:
    """uvicorn's options from `convertly serve`'s flags. uvicorn's own logging set-up and
    access log are off: `logs.configure` formats its lines like the app's, and the app
    writes the access line (in each process of `--workers N` too: the app factory configures
    it). A --log-config file is applied as given, its levels winning."""
    options: dict[str, Any] = {
        "log_level": None if args.log_config else settings.log_level.lower(),
        "log_config": args.log_config or None,
        "access_log": False,
        "timeout_graceful_shutdown": 30,
        "root_path": args.root_path,
        "proxy_headers": args.proxy_headers,
        "ssl_certfile": args.ssl_certfile,
        "ssl_keyfile": args.ssl_keyfile,
    }
    if args.forwarded_allow_ips is not None:
        options["forwarded_allow_ips"] = args.forwarded_allow_ips
    return options


def cmd_backup(settings: Settings, args: argparse.Namespace) -> int:
    from convertly import backup

    plan = backup.plan_for_remote(settings)
    if settings.distributed:
        print("convertly backup: nothing copied; in distributed mode back up these instead:",
              file=sys.stderr)
        for line in plan:
            print(f"- {line}", file=sys.stderr)
        return 1
    try:
        report = backup.backup(settings, Path(args.path), storage=not args.no_storage)
    except backup.BackupError as exc:
        print(f"convertly backup: {exc}", file=sys.stderr)
        return 1
    print(f"State: {report.database} ({report.jobs} jobs, {report.stored_files} stored "
          f"files, {report.api_keys} API keys).")
    if report.secret_copied:
        print(f"Signing secret: {report.database.parent / backup.SECRET_NAME}.")
    if settings.s3_endpoint or args.no_storage:
        print("Files: not copied.")
    else:
        print(f"Files: {report.objects} objects, {report.object_bytes} bytes in "
              f"{report.database.parent / backup.STORAGE_NAME}.")
        if report.missing:
            print(f"{report.missing} stored files were deleted while the backup ran; their "
                  "records remain and answer 404.")
    for line in plan:
        print(f"Also: {line}")
    print("To restore: stop the server, then run it with "
          f"CONVERTLY_DATA_DIR={report.database.parent} (or a copy of it).")
    return 0


# The Celery app `convertly worker` runs (and `celery -A` names in deploy/compose.yaml).
WORKER_APP = "workers.celery_app:app"


def cmd_worker(settings: Settings, args: argparse.Namespace) -> int:
    if not settings.distributed:
        print("convertly worker: set CONVERTLY_BROKER_URL (e.g. redis://127.0.0.1:6379/0); "
              "without it `convertly serve` runs conversions itself.", file=sys.stderr)
        return 2
    from celery.app.utils import find_app

    from convertly import tracing
    from convertly.storage import build_storage

    _check_data_dir(settings)
    tracing.check(settings)
    _check_storage(build_storage(settings, probe=False))
    # Celery would retry a Redis that refuses it for ever, as if it were down.
    _check_redis(settings)

    queues = args.queues or settings.worker_queues
    concurrency = args.concurrency or settings.worker_concurrency
    # The processes learn how many of them share the host (libvips sizes its threads by it):
    # the worker app reads its settings from the environment, as under `celery -A`.
    os.environ["CONVERTLY_WORKER_CONCURRENCY"] = str(concurrency)
    # Loaded by name, the way `celery -A` loads it: workers/ imports convertly, never the
    # other way round.
    app = find_app(WORKER_APP)
    argv = ["worker", "--queues", queues, "--concurrency", str(concurrency),
            "--loglevel", settings.log_level.upper(), "--hostname",
            f"convertly-{os.getpid()}@%h", "--without-mingle", "--without-gossip"]
    app.worker_main(argv)
    return 0


def _without_credentials(url: str) -> str:
    parts = urlsplit(url)
    return parts._replace(netloc=parts.netloc.rpartition("@")[2], query="").geturl()


def cmd_workers(settings: Settings, args: argparse.Namespace) -> int:
    """The live workers, from their leases in the broker's Redis; exit status 1 when there
    is none (with --local: none on this host), which makes it a worker's healthcheck."""
    if not settings.distributed:
        print("convertly workers: set CONVERTLY_BROKER_URL (e.g. redis://127.0.0.1:6379/0); "
              "without it `convertly serve` runs conversions itself.", file=sys.stderr)
        return 2
    import redis

    from convertly.executors import leases
    from convertly.state.redis.client import refusal

    broker = _without_credentials(settings.broker_url)
    try:
        with leases.connect(settings.broker_url) as client:
            records = leases.live_workers(client)
    except redis.RedisError as exc:
        reason = refusal(exc)
        if reason is not None:
            raise RedisRefusedError(settings.broker_url, "CONVERTLY_BROKER_URL",
                                    reason) from exc
        print(f"convertly workers: cannot read the worker leases from Redis at {broker} "
              f"(CONVERTLY_BROKER_URL): {exc}", file=sys.stderr)
        return 1
    now = time.time()
    # The age is measured on this host's clock, the beat stamped on the worker's.
    rows: list[dict[str, Any]] = [
        {"node": node, "host": node.partition("@")[2], "queues": record.get("queues", []),
         "held": len(record.get("held", [])),
         "lastBeatSeconds": round(max(0.0, now - record["at"]), 1)}
        for node, record in sorted(records.items())]
    host = socket.gethostname()
    if args.local:  # node names are convertly-<pid>@<host name>
        rows = [row for row in rows if row["host"] == host]
    if args.json:
        print(json.dumps(rows, indent=2))
    elif rows:
        node_width = max(len("NODE"), *(len(row["node"]) for row in rows))
        queues = [",".join(row["queues"]) or "-" for row in rows]
        queues_width = max(len("QUEUES"), *(len(q) for q in queues))
        print(f"{'NODE':<{node_width}}  {'QUEUES':<{queues_width}}  HELD  LAST BEAT")
        for row, queue in zip(rows, queues, strict=True):
            print(f"{row['node']:<{node_width}}  {queue:<{queues_width}}  {row['held']:>4}  "
                  f"{row['lastBeatSeconds']:.0f} s ago")
    if not rows:
        where = f" on this host ({host})" if args.local else ""
        print(f"convertly workers: no live worker found{where} in Redis at {broker}.",
              file=sys.stderr)
        return 1
    return 0


def cmd_keys_create(settings: Settings, args: argparse.Namespace) -> int:
    keys = _keys(settings)
    if args.tenant and all(k.tenant != args.tenant for k in keys.list()):
        # A mistyped tenant would otherwise start a new, empty one.
        raise NotFoundError(f"no tenant {args.tenant!r}: --tenant shares the tenant of an "
                            "existing key (see `convertly keys list`).")
    key, record = keys.create(args.name, tenant=args.tenant)
    print(f"Created API key {record.prefix}… named {record.name!r} for tenant {record.tenant}.")
    print("It is shown only this once:")
    print(key)
    return 0


def cmd_keys_list(settings: Settings, args: argparse.Namespace) -> int:
    rows = _keys(settings).list()
    if args.json:
        print(json.dumps([_key_record(k) for k in rows], indent=2))
        return 0
    if not rows:
        print("No API keys yet; create one with `convertly keys create --name NAME`.")
        return 0
    print(f"{'PREFIX':<15} {'NAME':<20} {'TENANT':<20} {'CREATED':<17} {'LAST USED':<17} STATE")
    for k in rows:
        state = f"revoked {_when(k.revoked_at)}" if k.revoked_at else "active"
        print(f"{k.prefix:<15} {k.name[:20]:<20} {k.tenant:<20} {_when(k.created_at):<17} "
              f"{_when(k.last_used_at):<17} {state}")
    return 0


def _key_record(key: ApiKey) -> dict[str, Any]:
    """A key as `keys list --json` prints it: the server API's camelCase names, times as
    Unix seconds (null when never)."""
    return {"prefix": key.prefix, "name": key.name, "tenant": key.tenant,
            "createdAt": key.created_at, "lastUsedAt": key.last_used_at,
            "revokedAt": key.revoked_at, "active": key.revoked_at is None}


def cmd_keys_revoke(settings: Settings, args: argparse.Namespace) -> int:
    record = _keys(settings).revoke(args.prefix)
    print(f"Revoked API key {record.prefix}… ({record.name}).")
    return 0


# `convertly keys limits` flags: (flag, TenantLimits field, parser of one value, unit).
_LIMIT_FLAGS = (
    ("--rate", "rate", float, "requests a second per API key", "CONVERTLY_RATE_LIMIT"),
    ("--burst", "burst", int, "requests at once per API key", "CONVERTLY_RATE_BURST"),
    ("--concurrent-jobs", "concurrent_jobs", int, "unfinished jobs",
     "CONVERTLY_TENANT_MAX_JOBS"),
    ("--queued-files", "queued_files", int, "files of unfinished jobs not yet converted",
     "CONVERTLY_TENANT_MAX_QUEUED_FILES"),
    ("--stored-bytes", "stored_bytes", int, "bytes in storage",
     "CONVERTLY_TENANT_MAX_STORED_BYTES"),
)


def _limit_value(parse: Callable[[str], float]) -> Callable[[str], float | None]:
    def read(raw: str) -> float | None:
        if raw.strip().lower() == "default":
            return None
        try:
            value = parse(raw.strip().replace("_", ""))
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected a number or 'default', got {raw!r}") from None
        if value < 0 or value != value or value == float("inf"):
            raise argparse.ArgumentTypeError(f"must be 0 (no limit) or more, got {raw!r}")
        return value
    return read


def cmd_keys_limits(settings: Settings, args: argparse.Namespace) -> int:
    from dataclasses import replace

    from convertly.limits import effective
    from convertly.state.records import TenantLimits

    keys = _keys(settings)
    tenant = keys.tenant_of(args.target)
    own = TenantLimits() if args.reset else keys.limits(tenant)
    changes = {field: getattr(args, field) for _, field, *_ in _LIMIT_FLAGS
               if getattr(args, field) is not _UNSET}
    if args.reset or changes:
        own = replace(own, **changes)
        if own.burst == 0:
            raise InvalidRequestError("--burst must be at least 1 (use --rate 0 to turn the "
                                      "rate limit off).")
        keys.set_limits(tenant, own)
    applied = effective(settings, own)
    print(f"Limits of tenant {tenant} (0: no limit):")
    for flag, field, _, what, env in _LIMIT_FLAGS:
        source = "own" if getattr(own, field) is not None else f"default, {env}"
        value = getattr(applied, field)
        shown = f"{value:g}" if isinstance(value, float) else str(value)
        print(f"  {flag[2:]:<16} {shown:>14}  {what} ({source})")
    return 0


_UNSET: Any = object()


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("convertly")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown (not installed)"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="convertly", description="Convertly. On the server: serve, worker, workers, keys. "
        "As a client of a running server (--url, --api-key): convert, compress, jobs, files.")
    parser.add_argument("--version", action="version", version=f"convertly {_version()}")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the API server (embedded executor by default)")
    serve.add_argument("--host", help="address to bind (default CONVERTLY_HOST or 127.0.0.1)")
    serve.add_argument("--port", help="port, 1 to 65535 (default CONVERTLY_PORT or 8000)")
    serve.add_argument("--workers", type=_positive, default=1, metavar="N",
                       help="API processes sharing the port (default 1); more than one needs "
                       "distributed mode. Not CONVERTLY_WORKERS, the embedded conversion pool")
    serve.add_argument("--root-path", default="", metavar="PATH",
                       help="the path prefix a proxy serves the API under (e.g. /convertly)")
    serve.add_argument("--ssl-certfile", metavar="PEM", help="serve HTTPS with this "
                       "certificate chain (with --ssl-keyfile)")
    serve.add_argument("--ssl-keyfile", metavar="PEM", help="the certificate's private key")
    serve.add_argument("--log-config", metavar="FILE", help="a logging configuration for "
                       "uvicorn and the app (.json, .yaml or .ini, as uvicorn reads them)")
    serve.add_argument("--proxy-headers", action=argparse.BooleanOptionalAction, default=True,
                       help="take the client address and scheme from X-Forwarded-For/-Proto "
                       "of the proxies --forwarded-allow-ips names (default on)")
    serve.add_argument("--forwarded-allow-ips", metavar="IPS",
                       help="comma-separated proxy addresses or networks trusted for "
                       "forwarded headers, or * (default FORWARDED_ALLOW_IPS or 127.0.0.1)")
    serve.set_defaults(func=cmd_serve)

    worker = sub.add_parser("worker", help="run a Celery worker (distributed mode)")
    worker.add_argument("--queues", help="comma-separated queues (default "
                        "CONVERTLY_WORKER_QUEUES: image,media,archive)")
    worker.add_argument("--concurrency", type=int, help="worker processes (default "
                        "CONVERTLY_WORKER_CONCURRENCY or one per core)")
    worker.set_defaults(func=cmd_worker)

    workers = sub.add_parser(
        "workers", help="list the live workers (distributed mode); exit 1 when there is none",
        description="List the live workers, from the leases they keep in the broker's Redis: "
        "node name, queues, files held, seconds since the last beat. Exit status 1 when none "
        "is listed.")
    workers.add_argument("--json", action="store_true", help="print a JSON array")
    workers.add_argument("--local", action="store_true",
                         help="only the workers on this host (the workers' healthcheck)")
    workers.set_defaults(func=cmd_workers)

    backup_cmd = sub.add_parser(
        "backup", help="copy the state (and local storage) into a new directory, while the "
        "server runs",
        description="Copy the embedded state into PATH, a new or empty directory that is "
        "then a data directory of its own: the SQLite database (a consistent snapshot, taken "
        "while the server runs), the generated signing secret and the local storage. Restore "
        "by running the server with CONVERTLY_DATA_DIR=PATH. In distributed mode it says what "
        "to back up in Redis and S3.")
    backup_cmd.add_argument("path", metavar="PATH", help="new or empty directory")
    backup_cmd.add_argument("--no-storage", action="store_true",
                            help="copy the state and secret only, not the local storage")
    backup_cmd.set_defaults(func=cmd_backup)

    keys = sub.add_parser("keys", help="manage API keys")
    keys_sub = keys.add_subparsers(dest="keys_command", required=True)
    create = keys_sub.add_parser("create", help="create a key; prints it as the last line")
    create.add_argument("--name", required=True, help="a label for the key")
    create.add_argument("--tenant", help="share an existing tenant (default: a new tenant)")
    create.set_defaults(func=cmd_keys_create)
    listing = keys_sub.add_parser("list", help="list keys (prefixes only)")
    listing.add_argument("--json", action="store_true", help="print a JSON array")
    listing.set_defaults(func=cmd_keys_list)
    revoke = keys_sub.add_parser("revoke", help="revoke the key with this prefix")
    revoke.add_argument("prefix")
    revoke.set_defaults(func=cmd_keys_revoke)
    limits = keys_sub.add_parser(
        "limits", help="show or set a tenant's own limits",
        description="Show a tenant's limits, or set its own (they override the settings; "
        "0 means no limit, 'default' goes back to the setting). TARGET is a tenant id or a "
        "key prefix. The API processes apply a change at once.")
    limits.add_argument("target", help="tenant id (tn_...) or key prefix (cvly_...)")
    for flag, field, parse, what, env in _LIMIT_FLAGS:
        limits.add_argument(flag, dest=field, type=_limit_value(parse), default=_UNSET,
                            metavar="N", help=f"{what} (default: {env})")
    limits.add_argument("--reset", action="store_true",
                        help="forget every own limit first (back to the settings)")
    limits.set_defaults(func=cmd_keys_limits)
    _add_client_commands(sub)
    return parser


def _output_format(raw: str) -> str:
    text = raw.strip().lower().lstrip(".")
    text = FORMAT_ALIASES.get(text, text)
    if text not in set(OutputFormat):
        raise argparse.ArgumentTypeError(
            f"unknown format {raw!r}; use one of {', '.join(OutputFormat)}")
    return text


def _percent(raw: str) -> int:
    if not raw.isdigit() or not 1 <= int(raw) <= 100:
        raise argparse.ArgumentTypeError(f"expected a whole number from 1 to 100, got {raw!r}")
    return int(raw)


def _positive(raw: str) -> int:
    if not raw.isdigit() or int(raw) < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number from 1, got {raw!r}")
    return int(raw)


def _add_client_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    server = argparse.ArgumentParser(add_help=False)
    server.add_argument("--url", help="the server (default CONVERTLY_URL or "
                        "http://127.0.0.1:8000)")
    server.add_argument("--api-key", help="API key (default CONVERTLY_API_KEY)")
    progress = argparse.ArgumentParser(add_help=False)
    progress.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")
    output = argparse.ArgumentParser(add_help=False)
    output.add_argument("-o", "--output", metavar="DIR", help="download into DIR (default: "
                        "the current directory); existing files are kept, new ones get -1, "
                        "-2, ... before the extension")

    convert = sub.add_parser(
        "convert", parents=[server, progress, output],
        help="convert files on a server (a job): wait and download, or --async",
        description="Upload FILES as one job, wait for it and download the outputs.")
    convert.add_argument("files", nargs="+", metavar="FILE",
                         help="files to upload, or one http(s) URL the server fetches")
    convert.add_argument("-f", "--format", required=True, type=_output_format,
                         help=f"output format: {', '.join(OutputFormat)}")
    convert.add_argument("-r", "--resize", type=str.lower, choices=fields.BY_NAME["resize"].choices,
                         help="resize preset (default original; --width alone means width, "
                         "--height alone means height)")
    convert.add_argument("-c", "--compression", "--quality", type=_percent, metavar="1-100",
                         help=f"quality (server default {fields.BY_NAME['compression'].default})")
    convert.add_argument("--width", type=_positive, help="width for --resize width or square")
    convert.add_argument("--height", type=_positive, help="height for --resize height")
    convert.add_argument("--page", type=_positive, help="page of a PDF source (default 1)")
    convert.add_argument("--no-auto-orient", action="store_true",
                         help="keep the pixels as stored (ignore EXIF orientation)")
    convert.add_argument("--mono", action="store_true", help="monochrome SVG tracing")
    convert.add_argument("--strip-metadata", action="store_true", help="drop EXIF and tags")
    convert.add_argument("--archive", action="store_true",
                         help="bundle the outputs into one archive and download that")
    convert.add_argument("--archive-format", default="zip", choices=fields.ARCHIVE_FORMATS,
                         help="archive format for --archive (default zip)")
    convert.add_argument("--async", dest="async_", action="store_true",
                         help="print the job id and return without waiting")
    convert.add_argument("--priority", choices=fields.PRIORITIES,
                         help="the job's place among waiting work (server default normal)")
    convert.add_argument("--idempotency-key", help="the same key returns the same job")
    convert.set_defaults(func=commands.cmd_convert)

    compress = sub.add_parser(
        "compress", parents=[server, progress, output],
        help="compress files on a server, keeping their formats (a job)",
        description="Upload FILES as one compress job (each keeps its format), wait for it "
        "and download the outputs. An output that would not be smaller is the original.")
    compress.add_argument("files", nargs="+", metavar="FILE",
                          help="files to upload, or one http(s) URL the server fetches")
    size_or_quality = compress.add_mutually_exclusive_group()
    size_or_quality.add_argument("-c", "--quality", "--compression", type=_percent, metavar="1-100",
                                 help="quality for lossy formats (server default "
                                 f"{fields.BY_NAME['compression'].default})")
    size_or_quality.add_argument("--target-size", type=_positive, metavar="BYTES",
                                 help="the largest size wanted; the best quality that fits")
    compress.add_argument("--lossless", action="store_true",
                          help="re-encode without loss (PNG at maximum compression, lossless "
                          "WebP; JPEG is only optimised)")
    compress.add_argument("--strip-metadata", action="store_true", help="drop EXIF and tags")
    compress.add_argument("--page", type=_positive, help="page of a PDF source (default 1)")
    compress.add_argument("--no-auto-orient", action="store_true",
                          help="keep the pixels as stored (ignore EXIF orientation)")
    compress.add_argument("--archive", action="store_true",
                          help="bundle the outputs into one archive and download that")
    compress.add_argument("--archive-format", default="zip", choices=fields.ARCHIVE_FORMATS,
                          help="archive format for --archive (default zip)")
    compress.add_argument("--priority", choices=fields.PRIORITIES,
                          help="the job's place among waiting work (server default normal)")
    compress.add_argument("--async", dest="async_", action="store_true",
                          help="print the job id and return without waiting")
    compress.add_argument("--idempotency-key", help="the same key returns the same job")
    compress.set_defaults(func=commands.cmd_compress)

    jobs = sub.add_parser("jobs", help="list, inspect, wait for or cancel jobs on a server")
    jobs_sub = jobs.add_subparsers(dest="jobs_command", required=True)
    listing = jobs_sub.add_parser("list", parents=[server], help="recent jobs, newest first")
    listing.add_argument("--status", choices=["pending", "processing", "completed", "failed"])
    listing.add_argument("--limit", type=int, default=20, help="at most this many (1-100)")
    listing.add_argument("--offset", type=int, default=0)
    listing.add_argument("--json", action="store_true", help="print the server's JSON")
    listing.set_defaults(func=commands.cmd_jobs_list)
    get = jobs_sub.add_parser("get", parents=[server], help="one job and its files")
    get.add_argument("job_id")
    get.add_argument("--json", action="store_true", help="print the server's JSON")
    get.set_defaults(func=commands.cmd_jobs_get)
    wait = jobs_sub.add_parser("wait", parents=[server, progress],
                               help="wait for a job; exit 1 if it or any file failed")
    wait.add_argument("job_id")
    wait.add_argument("-o", "--output", metavar="DIR", help="then download the outputs (or "
                      "the job's archive) into DIR, keeping existing files")
    wait.add_argument("--timeout", type=float, help="give up after this many seconds")
    wait.set_defaults(func=commands.cmd_jobs_wait)
    cancel = jobs_sub.add_parser("cancel", parents=[server],
                                 help="cancel a pending or processing job")
    cancel.add_argument("job_id")
    cancel.set_defaults(func=commands.cmd_jobs_cancel)

    files = sub.add_parser("files", help="stored files on a server: ls, get, rm")
    files_sub = files.add_subparsers(dest="files_command", required=True)
    ls = files_sub.add_parser("ls", aliases=["list"], parents=[server],
                              help="list stored files")
    ls.add_argument("--folder", help="a folder id (null: the root folder)")
    ls.add_argument("--search", "-s", "--q", dest="search", help="match file names")
    ls.add_argument("--limit", type=int, help="at most this many")
    ls.add_argument("--offset", type=int)
    ls.add_argument("--json", action="store_true", help="print the server's JSON")
    ls.set_defaults(func=commands.cmd_files_ls)
    fget = files_sub.add_parser("get", parents=[server, progress, output],
                                help="download a stored file (through its signed link)")
    fget.add_argument("file_id")
    shown = fget.add_mutually_exclusive_group()
    shown.add_argument("--json", action="store_true", help="print the record, no download")
    shown.add_argument("--link", action="store_true",
                       help="print the signed download link, no download")
    fget.set_defaults(func=commands.cmd_files_get)
    rm = files_sub.add_parser("rm", parents=[server], help="delete stored files")
    rm.add_argument("file_ids", nargs="+", metavar="FILE_ID")
    rm.set_defaults(func=commands.cmd_files_rm)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        print(f"convertly: invalid setting: {exc}", file=sys.stderr)
        return 2
    try:
        code: int = args.func(settings, args)
    except SettingsError as exc:  # found at start-up: the data directory
        print(f"convertly: invalid setting: {exc}", file=sys.stderr)
        return 2
    except StorageMisconfiguredError as exc:
        print(f"convertly: {exc.reason}", file=sys.stderr)
        return 1
    except RedisRefusedError as exc:
        print(f"convertly: {exc}", file=sys.stderr)
        return 1
    except SchemaTooNewError as exc:
        print(f"convertly: {exc}", file=sys.stderr)
        return 1
    except StateMisconfiguredError as exc:  # refused after start-up's check
        url, setting = _redis_settings(settings)[-1]
        print(f"convertly: {RedisRefusedError(url, setting, exc.reason)}", file=sys.stderr)
        return 1
    except (StateUnavailableError, BrokerUnavailableError) as exc:
        # At start-up "retry in a few seconds" is no help without knowing what to check.
        if isinstance(exc, StateUnavailableError) and settings.state_url:
            url, setting = settings.state_url, "CONVERTLY_STATE_URL"
        else:
            url, setting = settings.broker_url, "CONVERTLY_BROKER_URL"
        print(f"convertly: Redis at {_without_credentials(url)} ({setting}) does not answer "
              f"({type(exc).__name__}); start it, or point {setting} at a running one.",
              file=sys.stderr)
        return 1
    except ConvertlyError as exc:
        print(f"convertly: {exc.message}", file=sys.stderr)
        return 1
    except commands.UsageError as exc:
        print(f"convertly: {exc}", file=sys.stderr)
        return 2
    except ClientError as exc:
        print(f"convertly: {commands.explain(exc)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\nconvertly: interrupted", file=sys.stderr)
        return 130
    return code


if __name__ == "__main__":
    sys.exit(main())
