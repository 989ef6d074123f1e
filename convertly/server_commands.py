"""The server's commands: `serve`, `worker`, `workers`, `backup` and `keys`, with the checks
they make at start-up (data directory, storage, Redis) so that a misconfiguration is one line,
not a traceback. `convertly.cli` parses the command line and runs them.

They import the server's modules when they run, not here: the client commands (convert,
compress, jobs, files) load none of them (starlette, pyvips, celery, redis, ...), so they
start fast on any machine.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from convertly import commands
from convertly.errors import (
    InvalidRequestError,
    NotFoundError,
    StorageMisconfiguredError,
    StorageUnavailableError,
)
from convertly.settings import Settings, SettingsError, parse_port, shown

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
        super().__init__(f"Redis at {without_credentials(url)} ({setting}) refuses this "
                         f"server: {reason}")


def redis_settings(settings: Settings) -> list[tuple[str, str]]:
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

    for url, setting in redis_settings(settings):
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


def without_credentials(url: str) -> str:
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

    broker = without_credentials(settings.broker_url)
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
LIMIT_FLAGS = (
    ("--rate", "rate", float, "requests a second per API key", "CONVERTLY_RATE_LIMIT"),
    ("--burst", "burst", int, "requests at once per API key", "CONVERTLY_RATE_BURST"),
    ("--concurrent-jobs", "concurrent_jobs", int, "unfinished jobs",
     "CONVERTLY_TENANT_MAX_JOBS"),
    ("--queued-files", "queued_files", int, "files of unfinished jobs not yet converted",
     "CONVERTLY_TENANT_MAX_QUEUED_FILES"),
    ("--stored-bytes", "stored_bytes", int, "bytes in storage",
     "CONVERTLY_TENANT_MAX_STORED_BYTES"),
)


def limit_value(parse: Callable[[str], float]) -> Callable[[str], float | None]:
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
    changes = {field: getattr(args, field) for _, field, *_ in LIMIT_FLAGS
               if getattr(args, field) is not UNSET}
    if args.reset or changes:
        own = replace(own, **changes)
        if own.burst == 0:
            raise InvalidRequestError("--burst must be at least 1 (use --rate 0 to turn the "
                                      "rate limit off).")
        keys.set_limits(tenant, own)
    applied = effective(settings, own)
    print(f"Limits of tenant {tenant} (0: no limit):")
    for flag, field, _, what, env in LIMIT_FLAGS:
        source = "own" if getattr(own, field) is not None else f"default, {env}"
        value = getattr(applied, field)
        shown = f"{value:g}" if isinstance(value, float) else str(value)
        print(f"  {flag[2:]:<16} {shown:>14}  {what} ({source})")
    return 0


UNSET: Any = object()
