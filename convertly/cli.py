"""The `convertly` command line: its parser and `main`. On the server: `serve`, `worker`,
`workers`, `backup` and `keys` (convertly.server_commands); as a client of a running server:
`convert`, `compress`, `jobs` and `files` (convertly.commands)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from convertly_client import ClientError

from convertly import commands, fields
from convertly.errors import (
    BrokerUnavailableError,
    ConvertlyError,
    StateMisconfiguredError,
    StateUnavailableError,
    StorageMisconfiguredError,
)
from convertly.models import FORMAT_ALIASES, OutputFormat
from convertly.server_commands import (
    LIMIT_FLAGS,
    UNSET,
    RedisRefusedError,
    cmd_backup,
    cmd_keys_create,
    cmd_keys_limits,
    cmd_keys_list,
    cmd_keys_revoke,
    cmd_serve,
    cmd_worker,
    cmd_workers,
    limit_value,
    redis_settings,
    without_credentials,
)
from convertly.settings import Settings, SettingsError
from convertly.state.sqlite.migrations import SchemaTooNewError


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
    for flag, field, parse, what, env in LIMIT_FLAGS:
        limits.add_argument(flag, dest=field, type=limit_value(parse), default=UNSET,
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

    tool = sub.add_parser(
        "tool", parents=[server, progress, output],
        help="run a media tool on a server (thumbnail, strip-metadata, inspect, ...)",
        description="Run media tool NAME on FILE as a job (POST /api/media/NAME), wait for "
        "it and download its output; a tool that writes no file (inspect) prints what it "
        "found as JSON. The tools and their options: GET /openapi.json, or the README.")
    tool.add_argument("name", metavar="NAME", help="the tool, e.g. thumbnail")
    tool.add_argument("file", metavar="FILE",
                      help="the file to upload, or an http(s) URL the server fetches")
    tool.add_argument("--opt", action="append", metavar="KEY=VALUE",
                      help="one of the tool's options by its API name, e.g. --opt width=320 "
                      "(repeat for more)")
    tool.add_argument("--async", dest="async_", action="store_true",
                      help="print the job id and return without waiting")
    tool.add_argument("--idempotency-key", help="the same key returns the same job")
    tool.set_defaults(func=commands.cmd_tool)

    transfer = sub.add_parser(
        "transfer", parents=[server, progress, output],
        help="have the server fetch a URL or an S3 object (download it, or keep it)",
        description="The server fetches SOURCE (an http(s) URL, or s3://BUCKET/KEY or "
        "s3://BUCKET/PREFIX/ with --s3-endpoint and the credentials) through POST "
        "/api/transfer. Without --store or --extract the file is downloaded into -o DIR; "
        "with them it stays in the server's storage and the stored files are listed.")
    transfer.add_argument("source", metavar="SOURCE")
    transfer.add_argument("--store", action="store_true",
                          help="keep it in storage (a queued job, waited for) instead of "
                          "downloading it")
    transfer.add_argument("--extract", action="store_true",
                          help="unpack the archive into a new folder in storage")
    transfer.add_argument("--folder-name", help="with --extract: the new folder's name "
                          "(default: the archive's)")
    transfer.add_argument("--target-folder", metavar="FOLDER_ID",
                          help="with --extract: make the new folder inside this one")
    transfer.add_argument("--flat", action="store_true",
                          help="with --extract: every file in the one folder (no subfolders)")
    transfer.add_argument("--max-files", type=_positive, help="with --extract: at most this "
                          "many entries")
    transfer.add_argument("--max-entry-bytes", type=_positive,
                          help="with --extract: the largest entry")
    transfer.add_argument("--max-total-bytes", type=_positive,
                          help="with --extract: at most this many bytes unpacked")
    transfer.add_argument("--filename", help="the name to give the file")
    transfer.add_argument("--s3-endpoint", help="an s3:// SOURCE's service (default AWS)")
    transfer.add_argument("--s3-region", help="an s3:// SOURCE's region")
    transfer.add_argument("--json", action="store_true", help="print the server's JSON")
    transfer.set_defaults(func=commands.cmd_transfer)

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
        url, setting = redis_settings(settings)[-1]
        print(f"convertly: {RedisRefusedError(url, setting, exc.reason)}", file=sys.stderr)
        return 1
    except (StateUnavailableError, BrokerUnavailableError) as exc:
        # At start-up "retry in a few seconds" is no help without knowing what to check.
        if isinstance(exc, StateUnavailableError) and settings.state_url:
            url, setting = settings.state_url, "CONVERTLY_STATE_URL"
        else:
            url, setting = settings.broker_url, "CONVERTLY_BROKER_URL"
        print(f"convertly: Redis at {without_credentials(url)} ({setting}) does not answer "
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
