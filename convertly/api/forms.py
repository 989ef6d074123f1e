"""Requests turned into one typed, checked object each: multipart bodies streamed to disk
with limits enforced as bytes arrive, then every field read through the field table
(`convertly/fields.py`): per-file settings (singular fields or JSON arrays with one entry per
file) become FileSpecs, and the rest the request's own fields (`conversions.ConvertRequest`
for the sync routes, `jobs.JobRequest` for POST /api/jobs)."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import re
import shutil
import tempfile
import urllib.parse
from collections.abc import AsyncIterator, Callable, Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import ClientDisconnect, Request

from convertly import diskspace, fetches, filenames, mediatools, outbound, webhooks
from convertly.conversions import ConvertRequest
from convertly.converters.tools.base import Tool
from convertly.errors import (
    ArrayLengthError,
    FileTooLargeError,
    InvalidFieldError,
    InvalidRequestError,
    PayloadTooLargeError,
    TooManyFilesError,
)
from convertly.fetches import FetchPool
from convertly.fields import BY_NAME, Field
from convertly.jobs import JobRequest
from convertly.models import CompressMode, FileSpec, JobType, OutputFormat, ResizePreset
from convertly.settings import Settings
from convertly.sniff import HEAD_BYTES

FILE_FIELDS = BY_NAME["files"].names
# The bracketed names of form libraries that send a list of files (PHP's cURL sends
# `files[0]`, `files[1]`, browsers' `files[]`): the same field, in the order sent.
_BRACKETED_FILE = re.compile(r"files?\[\d*\]")
MAX_FIELD_BYTES = 64 * 1024
MAX_FIELDS = 200
MAX_BOUNDARY = 70  # RFC 2046; python-multipart refuses more than 256 with an exception
@dataclass
class UploadedFile:
    field: str
    filename: str
    content_type: str
    path: Path
    size: int = 0
    # "sha256:<hex>" of the bytes, taken as they streamed in (when the parse was asked for
    # digests), or "url:<url>" for a sourceUrl's file; "" otherwise.
    digest: str = ""
    # The first HEAD_BYTES bytes, kept as they streamed in, for sniffing without reading the
    # spooled file again (empty for a sourceUrl's file).
    head: bytes = b""


@dataclass
class ParsedForm:
    """Text fields and spooled files. `cleanup()` removes what was not moved into storage."""

    spool: Path
    fields: dict[str, str] = field(default_factory=dict)
    files: list[UploadedFile] = field(default_factory=list)

    def cleanup(self) -> None:
        shutil.rmtree(self.spool, ignore_errors=True)

    def get(self, name: str) -> str | None:
        value = self.fields.get(name)
        return None if value is None or value.strip() == "" else value.strip()


class _Collector:
    """python-multipart callbacks writing file parts to `spool` under the limits."""

    def __init__(self, form: ParsedForm, settings: Settings,
                 on_file: Callable[[int, UploadedFile], None] | None = None,
                 digests: bool = False, file_fields: Collection[str] = FILE_FIELDS) -> None:
        self.form = form
        self.file_fields = file_fields
        self.settings = settings
        self.on_file = on_file
        self.digests = digests
        self.hasher: Any = None
        self.header_field = bytearray()
        self.header_value = bytearray()
        self.headers: dict[bytes, bytes] = {}
        self.name = ""
        self.sink: BinaryIO | None = None
        self.current: UploadedFile | None = None
        self.value = bytearray()
        self.field_count = 0
        self.error: Exception | None = None

    def callbacks(self) -> dict[str, Callable[..., None]]:
        return {
            "on_part_begin": self.on_part_begin,
            "on_part_data": self.on_part_data,
            "on_part_end": self.on_part_end,
            "on_header_field": self.on_header_field,
            "on_header_value": self.on_header_value,
            "on_header_end": self.on_header_end,
            "on_headers_finished": self.on_headers_finished,
        }

    def on_part_begin(self) -> None:
        self.headers = {}
        self.value = bytearray()
        self.current = None
        self.sink = None

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self.header_field += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self.header_value += data[start:end]

    def on_header_end(self) -> None:
        self.headers[bytes(self.header_field).lower()] = bytes(self.header_value)
        self.header_field = bytearray()
        self.header_value = bytearray()

    def on_headers_finished(self) -> None:
        _, options = parse_options_header(self.headers.get(b"content-disposition", b""))
        self.name = options.get(b"name", b"").decode("utf-8", "replace")
        filename = options.get(b"filename")
        if filename is None:
            self.field_count += 1
            if self.field_count > MAX_FIELDS:
                raise InvalidRequestError(f"Too many form fields (limit {MAX_FIELDS}).")
            return
        takes_files = "files" in self.file_fields
        bracketed = takes_files and _BRACKETED_FILE.fullmatch(self.name)
        if self.name not in self.file_fields and not bracketed:
            expected = "files" if takes_files else min(self.file_fields)
            raise InvalidFieldError(self.name, f"unexpected file; send files in '{expected}'.")
        if len(self.form.files) >= self.settings.max_files:
            raise TooManyFilesError(
                f"Too many files: at most {self.settings.max_files} per request "
                "(setting CONVERTLY_MAX_FILES)."
            )
        index = len(self.form.files)
        # A client may send a path (RFC 7578 4.2): its last segment is the name, and that
        # is held to the rule every route applies, before the file's bytes are read.
        name = filename.decode("utf-8", "replace").replace("\\", "/").rsplit("/", 1)[-1]
        name = (filenames.check(name, self.name, file_index=index) if name.strip()
                else f"file-{index + 1}")
        path = self.form.spool / f"upload-{index}"
        self.current = UploadedFile(
            field=self.name,
            filename=name,
            content_type=self.headers.get(b"content-type", b"").decode("latin-1"),
            path=path,
        )
        self.form.files.append(self.current)
        self.sink = path.open("wb")
        self.hasher = hashlib.sha256() if self.digests else None

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self.sink is not None and self.current is not None:
            self.current.size += end - start
            if self.current.size > self.settings.max_file_bytes:
                raise FileTooLargeError(
                    f"{self.current.filename} is larger than the limit of "
                    f"{self.settings.max_file_bytes} bytes per file (setting "
                    "CONVERTLY_MAX_FILE_BYTES).",
                    filename=self.current.filename,
                )
            self.sink.write(data[start:end])
            if len(self.current.head) < HEAD_BYTES:
                self.current.head += data[start:min(end, start + HEAD_BYTES)]
            if self.hasher is not None:
                self.hasher.update(data[start:end])
            return
        self.value += data[start:end]
        if len(self.value) > MAX_FIELD_BYTES:
            raise InvalidFieldError(self.name, f"value longer than {MAX_FIELD_BYTES} bytes.")

    def on_part_end(self) -> None:
        if self.sink is not None:
            self.sink.close()
            self.sink = None
            if self.hasher is not None and self.current is not None:
                self.current.digest = f"sha256:{self.hasher.hexdigest()}"
                self.hasher = None
            if self.on_file is not None and self.current is not None:
                self.on_file(len(self.form.files) - 1, self.current)
            return
        try:
            self.form.fields[self.name] = self.value.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidFieldError(self.name, "value is not valid UTF-8.") from exc

    def close(self) -> None:
        if self.sink is not None:
            # The spool is removed next; flushing its last bytes may fail (a full disk) and
            # must not hide the error that got us here.
            with contextlib.suppress(OSError):
                self.sink.close()


async def parse_multipart(
    request: Request, settings: Settings, spool_root: Path,
    on_file: Callable[[int, UploadedFile], None] | None = None, *, digests: bool = False,
    file_fields: Collection[str] = FILE_FIELDS,
) -> ParsedForm:
    """Stream the multipart body to a private spool directory, enforcing the size and count
    limits while it arrives; file parts are taken in `file_fields` only (the field table's
    `files` and its aliases unless told). `on_file(index, upload)` runs as each file part
    is complete (it must not block). With `digests`, each file's SHA-256 is taken as its
    bytes arrive (`UploadedFile.digest`): no second read of the spooled file. The caller
    must call `cleanup()` on the result."""
    content_type, params = parse_options_header(request.headers.get("content-type", ""))
    if content_type != b"multipart/form-data" or b"boundary" not in params:
        raise InvalidRequestError(
            "Send the request as multipart/form-data with the files in the 'files' field "
            f"(the request's Content-Type is {_shown(content_type)})."
        )
    if not 0 < len(params[b"boundary"]) <= MAX_BOUNDARY:
        raise InvalidRequestError(
            f"The multipart boundary must be 1 to {MAX_BOUNDARY} characters long (RFC 2046)."
        )
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > settings.max_request_bytes:
        raise PayloadTooLargeError(
            f"The request body ({length} bytes) exceeds the limit of "
            f"{settings.max_request_bytes} bytes (setting CONVERTLY_MAX_REQUEST_BYTES)."
        )
    with diskspace.room(f"the upload spool {spool_root}"):
        spool_root.mkdir(parents=True, exist_ok=True)
        form = ParsedForm(spool=Path(tempfile.mkdtemp(prefix="upload-", dir=spool_root)))
    collector = _Collector(form, settings, on_file, digests, file_fields)
    parser = MultipartParser(params[b"boundary"], collector.callbacks())  # type: ignore[arg-type]
    received = 0
    try:
        async for chunk in request.stream():
            received += len(chunk)
            if received > settings.max_request_bytes:
                raise PayloadTooLargeError(
                    f"The request body exceeds the limit of {settings.max_request_bytes} "
                    "bytes (setting CONVERTLY_MAX_REQUEST_BYTES)."
                )
            parser.write(chunk)
        parser.finalize()
    except ClientDisconnect:
        collector.close()
        form.cleanup()
        raise
    except Exception as exc:
        collector.close()
        form.cleanup()
        if isinstance(exc, InvalidRequestError | PayloadTooLargeError):
            raise
        if diskspace.is_full(exc):  # the server's disk, not the client's body
            raise diskspace.full(f"the upload spool {spool_root}", exc) from exc
        raise InvalidRequestError(f"The multipart body is malformed: {exc}") from exc
    return form


def _shown(content_type: bytes) -> str:
    return repr(content_type.decode("latin-1")[:80]) if content_type else "missing"


URLENCODED = b"application/x-www-form-urlencoded"
MAX_URLENCODED_BYTES = MAX_FIELD_BYTES * 4


async def parse_fields(request: Request, settings: Settings, spool_root: Path,
                       on_file: Callable[[int, UploadedFile], None] | None = None, *,
                       digests: bool = False, file_fields: Collection[str] = FILE_FIELDS
                       ) -> ParsedForm:
    """A conversion request's body: multipart (`parse_multipart`), or fields alone as
    application/x-www-form-urlencoded, which is how a request with a `sourceUrl` and no
    upload may also be sent. Anything else is refused naming both content types."""
    content_type, _ = parse_options_header(request.headers.get("content-type", ""))
    if content_type != URLENCODED:
        if content_type != b"multipart/form-data":
            raise InvalidRequestError(
                "Send the request as multipart/form-data with the files in the 'files' field, "
                "or, for a sourceUrl without files, as application/x-www-form-urlencoded (the "
                f"request's Content-Type is {_shown(content_type)})."
            )
        return await parse_multipart(request, settings, spool_root, on_file, digests=digests,
                                     file_fields=file_fields)
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_URLENCODED_BYTES:
            raise InvalidRequestError(
                f"A form-urlencoded body holds fields only, at most {MAX_URLENCODED_BYTES:,} "
                "bytes; send files as multipart/form-data.")
    try:
        pairs = urllib.parse.parse_qsl(body.decode("utf-8"), keep_blank_values=True,
                                       max_num_fields=MAX_FIELDS, errors="strict")
    except UnicodeDecodeError as exc:
        raise InvalidRequestError("The form-urlencoded body is not valid UTF-8.") from exc
    except ValueError as exc:
        raise InvalidRequestError(f"Too many form fields (limit {MAX_FIELDS}).") from exc
    for name, text in pairs:
        if name in FILE_FIELDS:
            raise InvalidFieldError(name, "files cannot be sent form-urlencoded; send them as "
                                    "multipart/form-data, or a sourceUrl instead.")
        if len(text.encode()) > MAX_FIELD_BYTES:
            raise InvalidFieldError(name, f"value longer than {MAX_FIELD_BYTES} bytes.")
    if not any(name == "sourceUrl" and text.strip() for name, text in pairs):
        raise InvalidFieldError("sourceUrl", "is required in a form-urlencoded request, which "
                                "carries no files; send files as multipart/form-data.")
    with diskspace.room(f"the upload spool {spool_root}"):
        spool_root.mkdir(parents=True, exist_ok=True)
        spool = Path(tempfile.mkdtemp(prefix="upload-", dir=spool_root))
    return ParsedForm(spool=spool, fields=dict(pairs))


# --- the request fields -----------------------------------------------------------------


class SpecReader:
    """Reads the table's per-file fields, singular or as JSON arrays, for `count` files."""

    def __init__(self, form: ParsedForm, job_type: JobType) -> None:
        self.form = form
        self.job_type = job_type
        self.count = len(form.files)

    def values(self, field: Field) -> list[Any]:
        """One value per file: the array's entries (a null entry takes the singular field's
        value, else the default), else the singular field for every file, else the default."""
        fallback = None if field.default is None else field.parse(field.default, field.name,
                                                                   None)
        sent = [(name, raw) for name in field.singular(self.job_type)
                if (raw := self.form.get(name)) is not None]
        if sent:
            fallback = field.parse(sent[0][1], sent[0][0], None)
        plural = field.array
        if plural is not None and (raw := self.form.get(plural)) is not None:
            try:
                items = json.loads(raw)
            except json.JSONDecodeError as exc:
                raise InvalidFieldError(plural, f"is not valid JSON ({exc.msg}); send a JSON "
                                        "array with one entry per file.") from exc
            except (ValueError, RecursionError) as exc:
                # Integers over Python's digit limit, or arrays nested thousands deep.
                raise InvalidFieldError(plural, "is not JSON we accept (a number too long or "
                                        "nesting too deep); send a flat JSON array with one "
                                        "entry per file.") from exc
            if not isinstance(items, list):
                raise InvalidFieldError(plural, "must be a JSON array with one entry per file.")
            if len(items) != self.count:
                raise ArrayLengthError(plural, len(items), self.count)
            return [
                fallback if item is None else field.parse(item, plural, i)
                for i, item in enumerate(items)
            ]
        return [fallback] * self.count


def value(form: ParsedForm, field: Field) -> Any:
    """A single (not per-file) field's value: the sent one, else its default."""
    raw = form.get(field.name)
    if raw is None:
        return None if field.default is None else field.parse(field.default, field.name, None)
    return field.parse(raw, field.name, None)


def fetch_source(form: ParsedForm, settings: Settings, stop: outbound.Stop | None = None
                 ) -> None:
    """A `sourceUrl` in place of files (Convertly's SDKs send one for a URL input): download
    it into the spool as the request's one file, under the per-file size limit. Blocking:
    run it on the fetch pool (`fetch`); `stop` ends it early (DownloadCancelled)."""
    url = form.get("sourceUrl")
    if url is None:
        return
    if form.files:
        raise InvalidFieldError("sourceUrl", "send either files or a sourceUrl, not both.")
    path = form.spool / "upload-0"
    got = fetches.download_source(url, path, settings, stop)
    # The origin chose this name, not the client: neutralised rather than refused.
    form.files.append(UploadedFile(field="sourceUrl", filename=filenames.neutral(got.filename),
                                   content_type=got.content_type, path=path, size=got.size,
                                   digest=f"url:{url}"))


def refuse_format(form: ParsedForm) -> None:
    """`POST /api/compress` has no format field: one sent is a mistake to name, not to ignore.
    (A compress job takes the convert fields, so there `format` is accepted and unused.)"""
    field = BY_NAME["format"]
    for name in (field.name, field.array):
        if name is not None and form.get(name) is not None:
            raise InvalidFieldError(name, "compress keeps each file's format; to change it, "
                                    "use /api/convert.")


def build_specs(form: ParsedForm, job_type: JobType) -> list[FileSpec]:
    """FileSpecs for every uploaded file, validating every field (400 names field and file)."""
    if not form.files:
        raise InvalidFieldError("files", "no file uploaded; send one or more files in 'files'.")
    read = SpecReader(form, job_type)
    n = read.count
    compress = job_type is JobType.COMPRESS
    if compress:
        formats: list[OutputFormat | None] = [None] * n
    else:
        if form.get("format") is None and form.get("formats") is None:
            raise InvalidFieldError("format", "is required: send 'format' for every file or "
                                    "'formats' as a JSON array with one entry per file.")
        formats = read.values(BY_NAME["format"])
        for i, fmt in enumerate(formats):
            if fmt is None:
                raise InvalidFieldError("formats", "is null for this file and no 'format' "
                                        "is given to fall back on.", file_index=i)
    compressions = read.values(BY_NAME["compression"])
    resizes = read.values(BY_NAME["resize"])
    widths = read.values(BY_NAME["resizeWidth"])
    heights = read.values(BY_NAME["resizeHeight"])
    orients = read.values(BY_NAME["autoOrient"])
    monos = read.values(BY_NAME["mono"])
    modes = read.values(BY_NAME["mode"])
    targets = read.values(BY_NAME["targetBytes"])
    lossless = read.values(BY_NAME["lossless"])
    strip = read.values(BY_NAME["stripMetadata"])
    pages = read.values(BY_NAME["page"])
    specs = []
    for i, upload in enumerate(form.files):
        if resizes[i] is ResizePreset.WIDTH and widths[i] is None:
            raise InvalidFieldError("resizeWidth", "is required when resize is 'width'.",
                                    file_index=i)
        if resizes[i] is ResizePreset.HEIGHT and heights[i] is None:
            raise InvalidFieldError("resizeHeight", "is required when resize is 'height'.",
                                    file_index=i)
        if compress and modes[i] is CompressMode.TARGET_SIZE and targets[i] is None:
            raise InvalidFieldError("targetBytes", "is required when mode is 'target-size'.",
                                    file_index=i)
        specs.append(FileSpec(
            index=i, filename=upload.filename, job_type=job_type, format=formats[i],
            compression=compressions[i], resize=resizes[i], resize_width=widths[i],
            resize_height=heights[i], auto_orient=orients[i], mono=monos[i], mode=modes[i],
            target_bytes=targets[i], lossless=lossless[i], strip_metadata=strip[i],
            page=pages[i],
        ))
    return specs


# --- whole requests -----------------------------------------------------------------------

IDEMPOTENCY_KEY_MAX = 255


def idempotency_key(request: Request) -> str | None:
    """The `Idempotency-Key` header, checked before the body is read."""
    key = request.headers.get("idempotency-key")
    if key is not None and not 0 < len(key) <= IDEMPOTENCY_KEY_MAX:
        raise InvalidFieldError("Idempotency-Key", f"must be 1 to {IDEMPOTENCY_KEY_MAX} "
                                "characters.")
    return key


async def fetch(request: Request, tenant: str, form: ParsedForm, settings: Settings) -> None:
    """`fetch_source` on the app's fetch pool, in the tenant's turn; stopped (and the request
    ended as a client disconnect) when the client hangs up."""
    pool: FetchPool = request.app.state.fetches
    try:
        await pool.run(tenant, lambda stop: fetch_source(form, settings, stop),
                       lambda: _client_gone(request))
    except outbound.DownloadCancelled:
        raise ClientDisconnect() from None


async def _client_gone(request: Request) -> None:
    """Return once the client disconnects (the body is read: the next ASGI message is the
    disconnect, which the server sends as soon as the connection closes)."""
    while (await request.receive())["type"] != "http.disconnect":
        await asyncio.sleep(0.05)  # a server that repeats the body's end: do not spin


async def _received(request: Request, tenant: str, settings: Settings, spool_root: Path,
                    on_file: Callable[[int, UploadedFile], None] | None,
                    digests: bool = False) -> ParsedForm:
    """The spooled body, with a sourceUrl's file fetched into it."""
    form = await parse_fields(request, settings, spool_root, on_file, digests=digests)
    try:
        if form.get("sourceUrl") is not None:  # no thread hop for an upload
            await fetch(request, tenant, form, settings)
    except BaseException:
        await asyncio.to_thread(form.cleanup)
        raise
    return form


async def read_convert(request: Request, tenant: str, settings: Settings, spool_root: Path,
                       job_type: JobType) -> ConvertRequest:
    """A sync conversion's request, every field checked (400 naming field and file). The
    caller removes `spool` (`discard`) once the answer is sent."""
    form = await _received(request, tenant, settings, spool_root, None)
    try:
        if job_type is JobType.COMPRESS:
            refuse_format(form)
        specs = build_specs(form, job_type)
        save = value(form, BY_NAME["saveToStorage"])
    except BaseException:
        await asyncio.to_thread(form.cleanup)
        raise
    return ConvertRequest(specs=tuple(specs), paths=tuple(u.path for u in form.files),
                          sizes=tuple(u.size for u in form.files), save=save, spool=form.spool)


def discard(request: ConvertRequest) -> None:
    """Remove a sync request's spool: its uploads and the outputs not moved to storage."""
    shutil.rmtree(request.spool, ignore_errors=True)


@contextlib.asynccontextmanager
async def receive_job(request: Request, tenant: str, settings: Settings, spool_root: Path,
                      on_file: Callable[[int, UploadedFile], None] | None = None
                      ) -> AsyncIterator[JobRequest]:
    """A job's request, every field checked (400 naming field and file), its files spooled
    until the block ends. `on_file(index, upload)` runs as each file part is spooled."""
    key = idempotency_key(request)
    # Only a keyed request is fingerprinted, so only it pays for hashing its uploads.
    form = await _received(request, tenant, settings, spool_root, on_file,
                           digests=key is not None)
    try:
        job_type = value(form, BY_NAME["jobType"])
        specs = build_specs(form, job_type)
        create_archive = value(form, BY_NAME["createArchive"])
        archive_format = value(form, BY_NAME["archiveFormat"])
        save = value(form, BY_NAME["saveToStorage"])
        priority = value(form, BY_NAME["priority"])
        callback = webhooks.parse_callback(settings, form.get("callbackUrl"),
                                           form.get("callbackSecret"))
        yield JobRequest(specs=tuple(specs), paths=tuple(u.path for u in form.files),
                         job_type=job_type, create_archive=create_archive,
                         archive_format=archive_format, priority=priority, save=save,
                         callback=callback, idempotency_key=key,
                         digests=tuple(u.digest for u in form.files),
                         heads=tuple(u.head[:HEAD_BYTES] for u in form.files))
    finally:
        await asyncio.to_thread(form.cleanup)


async def read_tool(request: Request, tenant: str, settings: Settings, spool_root: Path,
                    tool: Tool) -> mediatools.ToolRequest:
    """A media tool's request (POST /api/media/{tool}): one source in `file` (or `files`) or
    a `sourceUrl`, the tool's options as fields (checked against its params: 400 naming an
    unknown or bad one), a file option as an uploaded part or a stored file's id. The caller
    removes the spool (`mediatools.discard`) once answered."""
    key = idempotency_key(request)
    file_options = mediatools.file_params(tool)
    form = await parse_fields(request, settings, spool_root, digests=key is not None,
                              file_fields=frozenset(FILE_FIELDS) | file_options)
    try:
        parts = [u for u in form.files if u.field in file_options]
        form.files = [u for u in form.files if u.field not in file_options]
        if len(form.files) > 1:
            raise InvalidFieldError("file", f"the {tool.name} tool takes one file; "
                                    f"{len(form.files)} were sent.")
        if form.get("sourceUrl") is not None:
            await fetch(request, tenant, form, settings)
        if not form.files:
            raise InvalidFieldError("file", "no file given; send the file in 'file', or its "
                                    "address in 'sourceUrl'.")
        queued, options = mediatools.queued(tool, form.fields)
        mediatools.check_options(tool, options)
        file_ids = tuple((name, text.strip()) for name, text in options.items()
                         if name in file_options and text.strip())
        save = value(form, BY_NAME["saveToStorage"])
        callback = webhooks.parse_callback(settings, form.get("callbackUrl"),
                                           form.get("callbackSecret"))
        source = form.files[0]
        return mediatools.ToolRequest(
            tool=tool,
            source=mediatools.Upload(source.path, source.filename, source.size, source.digest),
            options=tuple((name, text) for name, text in options.items()
                          if name not in file_options),
            spool=form.spool, file_ids=file_ids,
            file_parts=tuple((u.field, mediatools.Upload(u.path, u.filename, u.size, u.digest))
                             for u in parts),
            queued=queued, save=save, callback=callback if queued else None,
            idempotency_key=key if queued else None)
    except BaseException:
        await asyncio.to_thread(form.cleanup)
        raise
