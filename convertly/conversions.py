"""Sync conversions (POST /api/convert and /api/compress): every file of a request converted
at once by the executor, and each output kept where the answer needs it: in storage when the
caller asked to save (with its upload), for a while when it is too large to answer inline,
else left in the request's spool to be sent as a data: URL.
"""

from __future__ import annotations

import asyncio
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from convertly import fileinfo, limits, pipeline, webhooks
from convertly.errors import ConvertlyError
from convertly.executors.base import Executor
from convertly.models import ConvertedFile, FileSpec
from convertly.service import Services
from convertly.state.records import StoredFile, new_file_id
from convertly.storage.base import safe_name


@dataclass(frozen=True)
class ConvertRequest:
    """A sync conversion, parsed and checked (`api.forms.read_convert` builds it): one spec
    per spooled file, in order, inside `spool`, the request's private directory (its owner
    removes it once the answer is sent)."""

    specs: tuple[FileSpec, ...]
    paths: tuple[Path, ...]
    sizes: tuple[int, ...]
    save: bool
    spool: Path


@dataclass(frozen=True)
class Output:
    """One converted file. `stored` is its record when it went to storage (saved, or kept
    for CONVERTLY_TEMPORARY_TTL seconds when too large to answer inline); otherwise its
    bytes are at `converted.path`, inside the request's spool."""

    spec: FileSpec
    original_size: int
    converted: ConvertedFile
    name: str
    final_size: int
    stored: StoredFile | None

    @property
    def temporary(self) -> bool:
        return self.stored is not None and self.stored.temporary


async def run(svc: Services, executor: Executor, tenant: str,
              request: ConvertRequest) -> list[Output]:
    """Convert every file; the first file that cannot be converted fails the request with
    its error, naming the file."""
    if request.save:
        await asyncio.to_thread(limits.require_storage, svc, tenant, sum(request.sizes))
    sources = []
    workdirs = []
    for index, path in enumerate(request.paths):
        workdir = request.spool / f"work-{index}"
        workdir.mkdir()
        workdirs.append(workdir)
        sources.append(Path(shutil.move(path, workdir / "source")))
    outcomes = await asyncio.gather(
        *(executor.convert(src, spec, workdir)
          for src, spec, workdir in zip(sources, request.specs, workdirs, strict=True)),
        return_exceptions=True,
    )
    converted = []
    for spec, outcome in zip(request.specs, outcomes, strict=True):
        if isinstance(outcome, ConvertlyError):
            raise outcome.for_file(spec.filename)
        if isinstance(outcome, BaseException):
            raise outcome
        converted.append(outcome)
    return [await keep(svc, tenant, request.save, spec, src, size, out)
            for spec, src, size, out in zip(request.specs, sources, request.sizes, converted,
                                            strict=True)]


async def keep(svc: Services, tenant: str, save: bool, spec: FileSpec, src: Path,
               original_size: int, out: ConvertedFile) -> Output:
    """Keep a sync output where its answer needs it: in storage with its upload `src` when
    `save`, in storage for a while when too large to answer inline, else where it is."""
    path = Path(out.path)
    final_size = path.stat().st_size
    name = pipeline.output_filename(spec.filename, out.format)
    stored = None
    if save or final_size > svc.settings.data_url_max_bytes:
        if save:
            await asyncio.to_thread(limits.require_storage, svc, tenant,
                                    original_size + final_size)
            await asyncio.to_thread(store_upload, svc, tenant, src, spec.filename)
        stored = await asyncio.to_thread(store_output, svc, tenant, path, out, name,
                                         temporary=not save)
    return Output(spec=spec, original_size=original_size, converted=out, name=name,
                  final_size=final_size, stored=stored)


def store_output(
    svc: Services, tenant: str, path: Path, out: ConvertedFile, name: str, *,
    temporary: bool,
) -> StoredFile:
    """Keep a sync output in storage, permanently or for `temporary_ttl` seconds."""
    file_id = new_file_id()
    folder = "tmp" if temporary else "files"
    key = f"tenants/{tenant}/{folder}/{file_id}/{safe_name(name)}"
    # A temporary output is never listed: its record needs no duration or page count.
    duration, pages = (None, None) if temporary else fileinfo.extent(path, out.mime_type)
    size = svc.storage.put_file(key, path, move=True)
    now = time.time()
    return webhooks.file_stored(svc, svc.files.add(
        StoredFile(
            id=file_id, tenant=tenant, key=key, filename=name, mime_type=out.mime_type,
            size_bytes=size, width=out.width, height=out.height, duration=duration,
            page_count=pages, temporary=temporary, created_at=now,
            expires_at=now + svc.settings.temporary_ttl if temporary else None,
        )
    ))


def store_upload(svc: Services, tenant: str, path: Path, filename: str) -> StoredFile:
    """Keep an uploaded source in storage (sync requests with saveToStorage=true)."""
    file_id = new_file_id()
    key = f"tenants/{tenant}/files/{file_id}/{safe_name(filename)}"
    info = fileinfo.describe_path(path, filename)
    size = svc.storage.put_file(key, path, move=False)
    return webhooks.file_stored(svc, svc.files.add(
        StoredFile(id=file_id, tenant=tenant, key=key, filename=filename,
                   mime_type=info.mime_type, size_bytes=size, width=info.width,
                   height=info.height, duration=info.duration, page_count=info.page_count,
                   created_at=time.time())
    ))
