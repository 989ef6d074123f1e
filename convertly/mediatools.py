"""Media tools on files: POST /api/media/{tool} (one upload or sourceUrl, answered at once or
queued as a job with async=true) and POST /api/files/{id}/tools (a stored file; the output
stored beside it, or answered as a preview).

A tool runs where conversions run: its spec (`FileSpec.tool`, the options as sent) goes
through `Executor.convert` for an answer now, or becomes a one-file job of type `tool`
(`jobs.create`) whose file is queued on the queue of its source's kind. The options are
validated here before anything is queued (`pipeline.plan_tool`) and again where the tool
runs. A tool's file option (a watermark's image) is a stored file's id, or a part uploaded
beside the source, kept as a temporary stored file; either way the spec names its storage
key and the worker reads it from there.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from convertly import conversions, fileinfo, jobs, library, limits, pipeline, webhooks
from convertly.converters.tools.base import Tool
from convertly.errors import (
    ConvertlyError,
    InvalidFieldError,
    NotFoundError,
    PayloadTooLargeError,
)
from convertly.executors.base import Executor
from convertly.fields import parse_bool
from convertly.models import ConvertedFile, FileSpec, Job, JobType
from convertly.service import Services
from convertly.state.records import StoredFile, new_file_id
from convertly.storage.base import safe_name
from convertly.transforms.parse import parse
from convertly.transforms.table import ParamKind

# Fields of POST /api/media/{tool} that are the request's own, not a tool's option.
# `background` is one too (Convertly's alias of async=true) when its value is true or false;
# any other value goes to a tool that has a `background` option (a colour), see `queued`.
REQUEST_FIELDS = frozenset({"file", "files", "sourceUrl", "async", "saveToStorage",
                            "callbackUrl", "callbackSecret", "filename", "contentType"})
_FLAGS = frozenset({"true", "false", "1", "0", "yes", "no", "on", "off"})
_DATA_URL = re.compile(r"data:([\w.+-]+/[\w.+-]+)?(;[\w=.+-]+)*;base64,(.*)", re.DOTALL)


@dataclass(frozen=True)
class Upload:
    """A file the request brought: spooled at `path`."""

    path: Path
    filename: str
    size: int
    digest: str = ""


@dataclass(frozen=True)
class ToolRequest:
    """A media tool's request, parsed (`api.forms.read_tool`): the source, the options as
    sent (text, checked against the tool's params), file options as stored file ids or as
    uploaded parts, all inside `spool` (its owner removes it once answered)."""

    tool: Tool
    source: Upload
    options: tuple[tuple[str, str], ...]
    spool: Path
    file_ids: tuple[tuple[str, str], ...] = ()
    file_parts: tuple[tuple[str, Upload], ...] = ()
    queued: bool = False
    save: bool = False
    callback: webhooks.Callback | None = None
    idempotency_key: str | None = None


@dataclass(frozen=True)
class ToolResult:
    """A tool's answer: `output` its file (None when it only reports `facts`)."""

    converted: ConvertedFile
    output: conversions.Output | None

    @property
    def facts(self) -> dict[str, object]:
        return self.converted.facts


def file_params(tool: Tool) -> frozenset[str]:
    """The names (and aliases) of `tool`'s file options: fields that may carry a file."""
    return frozenset(name for p in tool.params if p.kind is ParamKind.FILE for name in p.names)


def queued(tool: Tool, fields: dict[str, str]) -> tuple[bool, dict[str, str]]:
    """Whether `fields` ask for a job (`async`, or its alias `background`, true), and the
    tool's options among them. `background` is the alias when it says true or false, or
    when the tool has no `background` option; else it is that option (a colour)."""
    options = {name: text for name, text in fields.items()
               if name not in REQUEST_FIELDS and name != "background"}
    flags = [("async", fields["async"])] if fields.get("async", "").strip() else []
    background = fields.get("background", "").strip()
    takes_background = any("background" in p.names for p in tool.params)
    if background and (background.lower() in _FLAGS or not takes_background):
        flags.append(("background", background))
    elif background:
        options["background"] = fields["background"]
    return any(parse_bool(text, name, None) for name, text in flags), options


def _spec(request: ToolRequest, inputs: tuple[tuple[str, str], ...] = ()) -> FileSpec:
    return FileSpec(index=0, filename=request.source.filename, job_type=JobType.TOOL,
                    tool=request.tool.name, options=request.options, inputs=inputs)


def _canonical(tool: Tool, name: str) -> str:
    return next((p.name for p in tool.params if name in p.names), name)


def _inputs(svc: Services, tenant: str, request: ToolRequest) -> tuple[tuple[str, str], ...]:
    """Each file option as (canonical name, storage key): a stored file of the tenant's, or
    an uploaded part kept as a temporary stored file (retention removes it)."""
    inputs = []
    for name, file_id in request.file_ids:
        try:
            record = library.require_file(svc, tenant, file_id)
        except ConvertlyError:
            raise InvalidFieldError(name, f"names no stored file of this API key "
                                    f"({file_id[:60]!r}); upload the file in this field, or "
                                    "send a stored file's id.") from None
        inputs.append((_canonical(request.tool, name), record.key))
    for name, part in request.file_parts:
        file_id = new_file_id()
        # Under its digest when it has one (a request with an Idempotency-Key), so that the
        # same request again has the same spec, and so the same fingerprint.
        folder = part.digest.replace(":", "-") if part.digest else file_id
        key = f"tenants/{tenant}/tmp/{folder}/{safe_name(part.filename)}"
        info = fileinfo.describe_path(part.path, part.filename)
        size = svc.storage.put_file(key, part.path, move=True)
        now = time.time()
        svc.files.add(StoredFile(
            id=file_id, tenant=tenant, key=key, filename=part.filename,
            mime_type=info.mime_type, size_bytes=size, temporary=True, created_at=now,
            expires_at=now + svc.settings.temporary_ttl))
        inputs.append((_canonical(request.tool, name), key))
    return tuple(inputs)


async def check(svc: Services, request: ToolRequest) -> None:
    """Refuse, before anything is stored or queued, a source the tool does not take (415) and
    options it would refuse (400 naming the field)."""
    # File options are checked where they are resolved; here only their presence counts.
    await asyncio.to_thread(pipeline.plan_tool, svc, request.source.path, _spec(request))


async def run(svc: Services, executor: Executor, tenant: str,
              request: ToolRequest) -> ToolResult:
    """Run the tool now and keep its output as a sync conversion's (`conversions.keep`):
    inline when small, else behind a link, in storage for good with saveToStorage."""
    converted, src = await _convert(svc, executor, tenant, request)
    if not converted.path:
        return ToolResult(converted, None)
    output = await conversions.keep(svc, tenant, request.save, _spec(request), src,
                                    request.source.size, converted)
    return ToolResult(converted, output)


async def _convert(svc: Services, executor: Executor, tenant: str,
                   request: ToolRequest) -> tuple[ConvertedFile, Path]:
    """The tool's output (and where the source is now)."""
    await check(svc, request)
    if request.save:
        await asyncio.to_thread(limits.require_storage, svc, tenant, request.source.size)
    inputs = await asyncio.to_thread(_inputs, svc, tenant, request)
    workdir = request.spool / "work"
    workdir.mkdir(exist_ok=True)
    src = Path(shutil.move(request.source.path, workdir / "source"))
    try:
        return await executor.convert(src, _spec(request, inputs), workdir), src
    except ConvertlyError as exc:
        exc.for_file(request.source.filename)
        raise


async def queue(svc: Services, executor: Executor, tenant: str, request: ToolRequest,
                base_url: str) -> tuple[Job, bool]:
    """The tool's job, stored and queued (job, True), or the earlier job its idempotency key
    names (job, False)."""
    await check(svc, request)
    inputs = await asyncio.to_thread(_inputs, svc, tenant, request)
    sources = jobs.source_store(svc, tenant)
    created = False
    try:
        job_request = jobs.JobRequest(
            specs=(_spec(request, inputs),), paths=(request.source.path,),
            job_type=JobType.TOOL, save=request.save, callback=request.callback,
            idempotency_key=request.idempotency_key, digests=(request.source.digest,))
        job, created = await jobs.create(svc, executor, tenant, job_request, sources, base_url)
    finally:
        if not created:
            await asyncio.to_thread(sources.discard)
        await asyncio.to_thread(sources.close)
    return job, created


# --- stored files -----------------------------------------------------------------------


def data_url_file(value: object, field: str, spool: Path) -> Upload:
    """A `data:...;base64,` URL's bytes, spooled as a file (the logo of a watermark)."""
    match = _DATA_URL.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        raise InvalidFieldError(field, "must be a data: URL with base64 content "
                                "(data:image/png;base64,...).")
    try:
        data = base64.b64decode(match.group(3), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidFieldError(field, "holds no valid base64.") from exc
    path = spool / f"part-{field}"
    path.write_bytes(data)
    return Upload(path=path, filename=field, size=len(data))


async def fetch_stored(svc: Services, tenant: str, file_id: str, spool: Path) -> Upload:
    """Stored file `file_id` of the tenant's (404 otherwise), copied into `spool`."""
    record = await asyncio.to_thread(library.require_file, svc, tenant, file_id)
    path = spool / "stored-source"
    try:
        await asyncio.to_thread(svc.storage.get_file, record.key, path)
    except FileNotFoundError:
        raise NotFoundError(f"File {file_id!r} is no longer in storage.") from None
    return Upload(path=path, filename=record.filename, size=path.stat().st_size)


async def run_on_stored(svc: Services, executor: Executor, tenant: str, file_id: str,
                        request: ToolRequest, *, preview: bool,
                        ) -> tuple[ConvertedFile, StoredFile | None]:
    """Run the tool on stored file `file_id`: its output stored as a new file in the same
    folder (None with `preview`, or when the tool writes no file). A preview's output larger
    than CONVERTLY_DATA_URL_MAX_BYTES is refused (413): it is answered as a data: URL."""
    record = await asyncio.to_thread(library.require_file, svc, tenant, file_id)
    converted, _ = await _convert(svc, executor, tenant, request)
    if not converted.path:
        return converted, None
    path = Path(converted.path)
    if preview:
        size = path.stat().st_size
        if size > svc.settings.data_url_max_bytes:
            raise PayloadTooLargeError(
                f"The preview is {size} bytes, over the {svc.settings.data_url_max_bytes} "
                "answered inline (CONVERTLY_DATA_URL_MAX_BYTES); send preview=false to store "
                "it and get a link.")
        return converted, None
    name = pipeline.output_filename(record.filename, converted.format)
    stored = await asyncio.to_thread(_store_beside, svc, tenant, record, path, converted, name)
    return converted, stored


def _store_beside(svc: Services, tenant: str, source: StoredFile, path: Path,
                  out: ConvertedFile, name: str) -> StoredFile:
    limits.require_storage(svc, tenant, path.stat().st_size)
    file_id = new_file_id()
    key = library.file_key(tenant, file_id, name)
    duration, pages = fileinfo.extent(path, out.mime_type)
    size = svc.storage.put_file(key, path, move=True)
    return webhooks.file_stored(svc, svc.files.add(StoredFile(
        id=file_id, tenant=tenant, key=key, filename=name, mime_type=out.mime_type,
        size_bytes=size, width=out.width, height=out.height, duration=duration,
        page_count=pages, folder_id=source.folder_id, created_at=time.time())))


def check_options(tool: Tool, options: dict[str, str]) -> None:
    """Refuse options `tool` does not take, or takes with other values (400 naming them)."""
    parse(options, tool.params)


def discard(request: ToolRequest) -> None:
    """Remove a tool request's spool: its uploads and the output not moved to storage."""
    discard_spool(request.spool)


def discard_spool(spool: Path) -> None:
    with contextlib.suppress(OSError):
        shutil.rmtree(spool)
