"""The client commands: `convert`, `compress`, `tool`, `jobs list|get|wait|cancel`,
`files ls|get|rm`.

Each takes the settings and the parsed arguments and answers an exit status: 0 when
everything worked, 1 when the server refused something or any file failed, 2 for a usage
problem found before any request. Results go to stdout (saved paths, job ids, tables, JSON);
progress, notices and errors to stderr.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from convertly_client import (
    ApiError,
    Client,
    ClientError,
    ConnectionFailed,
    Job,
    safe_filename,
)

from convertly.progress import Bar, Reporter, human_bytes
from convertly.settings import Settings

PROGRESS_WAIT = 1.0  # seconds each job request waits on the server while a bar is shown
LONG_WAIT = 30.0  # ... and without a bar (the server allows up to 60)
KEY_HINT = ("pass --api-key or set CONVERTLY_API_KEY; on the server, `convertly keys create "
            "--name NAME` makes one")


class UsageError(Exception):
    """Something the command line got wrong, caught before any request (exit status 2)."""


def explain(exc: ClientError) -> str:
    """The one or two lines printed for a failed request."""
    if isinstance(exc, ConnectionFailed):
        return (f"{exc.message}. Start a server there with `convertly serve`, or point --url "
                "(or CONVERTLY_URL) at a running one.")
    if isinstance(exc, ApiError):
        code = f" [{exc.code}]" if exc.code else ""
        text = f"{exc.message}{code}"
        if exc.status == 401:
            text += f"\nThe server refused the API key: {KEY_HINT}."
        return text
    return exc.message


@contextmanager
def connect(settings: Settings, args: argparse.Namespace) -> Iterator[Client]:
    url = args.url or settings.url
    key = args.api_key or settings.api_key
    if not key:
        raise UsageError(f"no API key: {KEY_HINT}.")
    if not url.startswith(("http://", "https://")):
        raise UsageError(f"--url must start with http:// or https://, got {url!r}.")
    with Client(url, key) as client:
        yield client


def _reporter(args: argparse.Namespace) -> Reporter:
    return Reporter(sys.stderr, quiet=getattr(args, "quiet", False))


def _when(when: datetime | None) -> str:
    return "-" if when is None else when.strftime("%Y-%m-%d %H:%M")


def _dump(data: Any) -> None:
    print(json.dumps(data, indent=2, ensure_ascii=False))


def _output_dir(args: argparse.Namespace) -> Path:
    directory = Path(args.output or ".")
    if directory.exists() and not directory.is_dir():
        raise UsageError(f"-o {directory}: not a directory.")
    directory.mkdir(parents=True, exist_ok=True)
    return directory


# --- convert -----------------------------------------------------------------------------


def convert_fields(args: argparse.Namespace) -> dict[str, str]:
    """The form fields of POST /api/jobs for the options given (server defaults otherwise)."""
    resize = args.resize
    if resize is None and args.width and not args.height:
        resize = "width"
    elif resize is None and args.height and not args.width:
        resize = "height"
    elif resize is None and args.width and args.height:
        raise UsageError("--width with --height needs --resize (square, width or height): "
                         "no preset fits both.")
    fields = {"format": args.format, "saveToStorage": "true"}
    optional = {
        "resize": resize,
        "compression": args.compression,
        "resizeWidth": args.width,
        "resizeHeight": args.height,
        "page": args.page,
        "autoOrient": "false" if args.no_auto_orient else None,
        "mono": "true" if args.mono else None,
        "stripMetadata": "true" if args.strip_metadata else None,
        "createArchive": "true" if args.archive else None,
        "archiveFormat": args.archive_format if args.archive else None,
        "priority": args.priority,
    }
    fields.update({name: str(value) for name, value in optional.items() if value is not None})
    return fields


def compress_fields(args: argparse.Namespace) -> dict[str, str]:
    """The form fields of a compress job (POST /api/jobs, jobType=compress)."""
    fields = {"jobType": "compress"}
    if args.target_size is not None:
        fields.update(mode="target-size", targetBytes=str(args.target_size))
    optional = {
        "quality": args.quality,
        "lossless": "true" if args.lossless else None,
        "stripMetadata": "true" if args.strip_metadata else None,
        "page": args.page,
        "autoOrient": "false" if args.no_auto_orient else None,
        "createArchive": "true" if args.archive else None,
        "archiveFormat": args.archive_format if args.archive else None,
        "priority": args.priority,
    }
    fields.update({name: str(value) for name, value in optional.items() if value is not None})
    return fields


def cmd_compress(settings: Settings, args: argparse.Namespace) -> int:
    return _run_job(settings, args, compress_fields(args))


def cmd_convert(settings: Settings, args: argparse.Namespace) -> int:
    return _run_job(settings, args, convert_fields(args))


def _run_job(settings: Settings, args: argparse.Namespace, fields: dict[str, str]) -> int:
    """Upload FILES as one job with `fields` (or have the server fetch one URL); wait and
    download, or print its id (--async)."""
    urls = [name for name in args.files if name.startswith(("http://", "https://"))]
    if urls and len(args.files) > 1:
        raise UsageError("a URL goes alone: the server fetches it as the job's one file, so "
                         "give one URL per command.")
    files = [] if urls else [Path(name) for name in args.files]
    for path in files:
        if not path.is_file():
            raise UsageError(f"{path}: {'is a directory' if path.is_dir() else 'no such file'}.")
    if urls:
        fields = {**fields, "sourceUrl": urls[0]}
    directory = None if args.async_ else _output_dir(args)
    with connect(settings, args) as client, _reporter(args) as reporter:
        label = ("Sending the URL" if urls else
                 f"Uploading {len(files)} file{'s' if len(files) > 1 else ''}")
        bar: Bar | None = None

        def sent(done: int, total: int) -> None:
            nonlocal bar
            bar = bar or reporter.bytes_bar(label, total)
            bar.update(done)

        created = client.create_job(files, fields=fields,
                                    idempotency_key=args.idempotency_key, on_sent=sent)
        if bar is not None:
            bar.close()
        job_id = created.job_id
        if directory is None:
            print(job_id)
            reporter.message(f"Job {job_id} queued; `convertly jobs wait {job_id} -o DIR` "
                             "waits for it and downloads the outputs.")
            return 0
        try:
            return _wait_and_save(client, job_id, reporter, directory, timeout=None)
        except KeyboardInterrupt:
            reporter.message(f"Stopped waiting; job {job_id} goes on on the server: "
                             f"`convertly jobs wait {job_id} -o {directory}` fetches it.")
            return 130


def _wait_and_save(client: Client, job_id: str, reporter: Reporter, directory: Path | None,
                   timeout: float | None) -> int:
    """Wait with a progress bar, save the outputs (or the archive) when `directory` is given,
    report failures; 0 only when the job completed and no file failed. A media tool's facts,
    for a file it wrote no output for (inspect), are printed as JSON."""
    bar: Bar | None = None

    def update(job: Job) -> None:
        nonlocal bar
        done = job.completed_files + job.failed_files
        # The first line is the job as it is now: a finished job shows no "0/N" first.
        bar = bar or reporter.files_bar(f"Job {job_id}", job.total_files, done, job.progress)
        bar.update(done, job.progress)

    # Short waits on the server keep the bar moving; without a bar, one long wait will do.
    job = client.wait_job(job_id, on_update=update, timeout=timeout,
                          wait=LONG_WAIT if reporter.quiet else PROGRESS_WAIT)
    if bar is not None:
        bar.close()
    if directory is not None:
        for path, wanted in _save_outputs(client, job, reporter, directory):
            print(path)
            if path.name != wanted:
                reporter.message(f"{directory / wanted} exists; saved as {path.name}.")
    for result in job.results:
        if result.status == "completed" and not result.download_url and result.raw.get("facts"):
            _dump(result.raw["facts"])
    return _report_failures(job, reporter)


def _save_outputs(client: Client, job: Job, reporter: Reporter,
                  directory: Path) -> Iterator[tuple[Path, str]]:
    if job.archive is not None and job.archive.download_url:
        targets = [(job.archive.download_url, job.archive.filename)]
    else:
        targets = [(r.download_url, r.output_filename or r.filename or "output")
                   for r in job.results if r.download_url]
    for url, name in targets:
        yield _download(client, reporter, url, directory, name), safe_filename(name)


def _download(client: Client, reporter: Reporter, url: str, directory: Path,
              name: str) -> Path:
    bar: Bar | None = None

    def start(size: int | None) -> None:
        nonlocal bar
        bar = reporter.bytes_bar(f"Downloading {name}", size or 0)

    def received(done: int) -> None:
        if bar is not None:
            if done > bar.total:
                bar.total = done
            bar.update(done)

    path = client.save_into(url, directory, name, on_start=start, on_received=received)
    if bar is not None:
        bar.close()
    return path


def _report_failures(job: Job, reporter: Reporter) -> int:
    failed = [r for r in job.results if r.status == "failed"]
    for result in failed:
        code = f" [{result.error_code}]" if result.error_code else ""
        reporter.message(f"convertly: {result.filename}: {result.error}{code}")
    if job.status == "failed":
        reporter.message(f"convertly: job {job.job_id} failed: "
                         f"{job.error_message or 'no file could be converted'}")
        return 1
    if failed:
        reporter.message(f"convertly: {len(failed)} of {job.total_files} files failed.")
        return 1
    return 0


# --- media tools ---------------------------------------------------------------------------


def tool_options(pairs: list[str] | None) -> dict[str, str]:
    """`--opt key=value` pairs as the tool's form fields (a later key wins)."""
    options = {}
    for pair in pairs or ():
        key, equals, value = pair.partition("=")
        if not equals or not key.strip():
            raise UsageError(f"--opt {pair!r}: give it as key=value (e.g. --opt width=320).")
        options[key.strip()] = value
    return options


def cmd_tool(settings: Settings, args: argparse.Namespace) -> int:
    """Run media tool NAME on FILE (or a URL the server fetches) as a job; wait and download
    its output (or print a tool's facts), or print the job id (--async)."""
    options = tool_options(args.opt)
    url = args.file if args.file.startswith(("http://", "https://")) else None
    path = None if url else Path(args.file)
    if path is not None and not path.is_file():
        raise UsageError(f"{path}: {'is a directory' if path.is_dir() else 'no such file'}.")
    directory = None if args.async_ else _output_dir(args)
    with connect(settings, args) as client, _reporter(args) as reporter:
        bar: Bar | None = None

        def sent(done: int, total: int) -> None:
            nonlocal bar
            bar = bar or reporter.bytes_bar("Sending the URL" if url else "Uploading 1 file",
                                            total)
            bar.update(done)

        created = client.queue_tool(args.name, path, source_url=url, options=options,
                                    idempotency_key=args.idempotency_key, on_sent=sent)
        if bar is not None:
            bar.close()
        if directory is None:
            print(created.job_id)
            reporter.message(f"Job {created.job_id} queued; `convertly jobs wait "
                             f"{created.job_id} -o DIR` waits for it and downloads the output.")
            return 0
        return _wait_and_save(client, created.job_id, reporter, directory, timeout=None)


# --- jobs --------------------------------------------------------------------------------


def cmd_jobs_list(settings: Settings, args: argparse.Namespace) -> int:
    with connect(settings, args) as client:
        body = client.list_jobs(limit=args.limit, offset=args.offset, status=args.status)
    if args.json:
        _dump(body.raw)
        return 0
    jobs = body.jobs
    if not jobs:
        print("No jobs.", file=sys.stderr)
        return 0
    print(f"{'JOB ID':<36}  {'TYPE':<8}  {'STATUS':<10}  {'FILES':>9}  {'FAILED':>6}  "
          f"{'PROGRESS':>8}  CREATED")
    for job in jobs:
        files = f"{job.completed_files}/{job.total_files}"
        print(f"{job.job_id:<36}  {job.job_type:<8}  "
              f"{_status(job):<10}  {files:>9}  {job.failed_files:>6}  "
              f"{_percent(job.progress) + '%':>8}  {_when(job.created_at)}")
    page = body.pagination
    if page.has_more:
        shown = page.offset + len(jobs)
        print(f"{shown} of {page.total} jobs shown; --offset {shown} for more.",
              file=sys.stderr)
    return 0


def _status(job: Job) -> str:
    """A job's status as shown: "cancelled" for a cancelled job (the API says failed, with
    `cancelled`)."""
    return "cancelled" if job.cancelled else job.status


def _percent(value: float) -> str:
    return f"{value:g}"


def cmd_jobs_get(settings: Settings, args: argparse.Namespace) -> int:
    with connect(settings, args) as client:
        job = client.get_job(args.job_id)
    if args.json:
        _dump(job.raw)
        return 0
    print(f"Job {job.job_id}: {job.job_type}, {_status(job)}, "
          f"{job.completed_files}/{job.total_files} files done, "
          f"{job.failed_files} failed, {_percent(job.progress)}%")
    print(f"Created {_when(job.created_at)}, finished {_when(job.completed_at)}")
    if job.error_message:
        print(f"Error: {job.error_message}")
    for r in job.results:
        line = f"  {r.index + 1:>3}  {r.filename}  {r.status}"
        if r.status == "completed":
            line += f"  -> {r.output_filename}"
            line += f"  {human_bytes(r.final_size)}" if r.final_size is not None else ""
            if r.width and r.height:
                line += f"  {r.width}x{r.height}"
        elif r.error:
            line += f"  {r.error}"
        print(line)
    archive = job.archive
    if archive is not None:
        print(f"Archive: {archive.filename}"
              + (f" ({human_bytes(archive.size)})" if archive.size is not None
                 else " (not built)"))
    return 0


def cmd_jobs_wait(settings: Settings, args: argparse.Namespace) -> int:
    directory = _output_dir(args) if args.output else None
    with connect(settings, args) as client, _reporter(args) as reporter:
        code = _wait_and_save(client, args.job_id, reporter, directory, timeout=args.timeout)
        if code == 0 and directory is None:
            reporter.message(f"Job {args.job_id} completed.")
    return code


def cmd_jobs_cancel(settings: Settings, args: argparse.Namespace) -> int:
    with connect(settings, args) as client:
        job = client.cancel_job(args.job_id)
    print(f"Cancelled job {job.job_id or args.job_id}.")
    return 0


# --- transfer ------------------------------------------------------------------------------


def _cloud_source(args: argparse.Namespace) -> dict[str, Any] | None:
    """An s3://BUCKET/KEY (or /PREFIX/) SOURCE as cloudSource, credentials from
    AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN."""
    if not args.source.startswith("s3://"):
        return None
    bucket, _, key = args.source[len("s3://"):].partition("/")
    if not bucket:
        raise UsageError(f"{args.source}: name the bucket, s3://BUCKET/KEY.")
    cloud: dict[str, Any] = {"provider": "s3", "bucket": bucket}
    if key and not key.endswith("/"):
        cloud["key"] = key
    else:
        cloud["prefix"] = key
    optional = {"endpoint": args.s3_endpoint, "region": args.s3_region,
                "accessKeyId": os.environ.get("AWS_ACCESS_KEY_ID"),
                "secretAccessKey": os.environ.get("AWS_SECRET_ACCESS_KEY"),
                "sessionToken": os.environ.get("AWS_SESSION_TOKEN")}
    cloud.update({k: v for k, v in optional.items() if v})
    return cloud


def cmd_transfer(settings: Settings, args: argparse.Namespace) -> int:
    cloud = _cloud_source(args)
    url = None if cloud is not None else args.source
    if url is not None and not url.startswith(("http://", "https://")):
        raise UsageError(f"{url}: SOURCE must be an http(s) URL or s3://BUCKET/KEY.")
    options = {"folderName": args.folder_name, "targetFolderId": args.target_folder,
               "preservePaths": False if args.flat else None, "maxFiles": args.max_files,
               "maxEntryBytes": args.max_entry_bytes, "maxTotalBytes": args.max_total_bytes}
    options = {k: v for k, v in options.items() if v is not None}
    if options and not args.extract:
        raise UsageError("--folder-name, --target-folder, --flat and --max-* go with "
                         "--extract.")
    with connect(settings, args) as client, _reporter(args) as reporter:
        if not (args.store or args.extract):
            path = client.transfer_into(_output_dir(args), url, cloud_source=cloud,
                                        filename=args.filename)
            print(path)
            return 0
        body = client.transfer(url, cloud_source=cloud, filename=args.filename,
                               extract=args.extract, extract_options=options or None)
        if "jobId" in body and "files" not in body:
            job = client.wait_job(str(body["jobId"]))
            if args.json:
                _dump(job.raw)
            if job.status != "completed":
                return _report_failures(job, reporter) or 1
            stored = [(r.stored_file_id, r.output_filename or r.filename)
                      for r in job.results]
        else:
            if args.json:
                _dump(body)
            stored = [(f.get("id"), f.get("filename")) for f in body.get("files") or []]
    if not args.json:
        for file_id, name in stored:
            print(f"{file_id}  {name}")
    return 0


# --- files (storage) ---------------------------------------------------------------------


def cmd_files_ls(settings: Settings, args: argparse.Namespace) -> int:
    with connect(settings, args) as client:
        body = client.list_files(folder=args.folder, search=args.search, limit=args.limit,
                                 offset=args.offset)
    if args.json:
        _dump(body.raw)
        return 0
    files = body.files
    if not files:
        print("No files.", file=sys.stderr)
        return 0
    print(f"{'ID':<36}  {'SIZE':>9}  {'TYPE':<22}  {'CREATED':<16}  NAME")
    for f in files:
        size = f.size_bytes
        print(f"{f.id:<36}  "
              f"{human_bytes(size) if size is not None else '-':>9}  "
              f"{(f.mime_type or '-')[:22]:<22}  {_when(f.created_at):<16}  "
              f"{f.filename}")
    page = body.pagination
    if page.has_more:
        shown = page.offset + len(files)
        print(f"{shown} of {page.total} files shown; --offset {shown} for more.",
              file=sys.stderr)
    return 0


def cmd_files_get(settings: Settings, args: argparse.Namespace) -> int:
    with connect(settings, args) as client:
        record = client.get_file(args.file_id)
        url = record.download_url
        if args.json:
            _dump(record.raw)
            return 0
        if args.link:
            print(url)
            return 0
        if not url:
            raise ClientError(f"the server gave no download link for {args.file_id}")
        directory = _output_dir(args)
        name = record.filename or args.file_id
        with _reporter(args) as reporter:
            path = _download(client, reporter, url, directory, name)
    print(path)
    if path.name != safe_filename(name):
        print(f"{directory / safe_filename(name)} exists; saved as {path.name}.",
              file=sys.stderr)
    return 0


def cmd_files_rm(settings: Settings, args: argparse.Namespace) -> int:
    status = 0
    with connect(settings, args) as client:
        for file_id in args.file_ids:
            try:
                client.delete_file(file_id)
            except ApiError as exc:
                print(f"convertly: {file_id}: {explain(exc)}", file=sys.stderr)
                status = 1
                continue
            print(f"Deleted {file_id}.")
    return status
