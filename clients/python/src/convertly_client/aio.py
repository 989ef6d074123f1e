"""The async client: `Client`'s methods as coroutines. The API key goes only to the
server's own API routes; signed download links need no key and get none."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar, Unpack

import httpx

from convertly_client import _calls as calls
from convertly_client._body import CHUNK, Upload, reserve, safe_filename
from convertly_client.models import (
    Conversion,
    FileList,
    FileOptions,
    Folder,
    Job,
    JobCreated,
    JobList,
    StoredFile,
    Webhook,
)

T = TypeVar("T")


class AsyncClient:
    """Talks to one Convertly server at `url` with `api_key`, from asyncio. Close it (or use
    it as an async context manager) when done. Requests that can be sent again (GET, DELETE,
    a job with an Idempotency-Key) are retried after a 429 or 503's Retry-After, `retries`
    times."""

    def __init__(self, url: str, api_key: str, *, timeout: httpx.Timeout | float = calls.TIMEOUT,
                 retries: int = calls.RETRIES,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.url = url.rstrip("/")
        self.api_key = api_key
        self.retries = retries
        self._http = httpx.AsyncClient(timeout=timeout, transport=transport, follow_redirects=False)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # --- sending ---

    async def _call(self, call: calls.Call[T], on_sent: Callable[[int, int], None] | None = None
              ) -> T:
        async with self._send(call, on_sent) as response:
            await response.aread()
            return call.parse(response)

    @asynccontextmanager
    async def _send(self, call: calls.Call[Any], on_sent: Callable[[int, int], None] | None = None,
              *, auth: bool = True) -> AsyncIterator[httpx.Response]:
        """Send `call` (streaming the answer), retrying as the class says; an error answer
        raises ApiError."""
        url = call.path if "://" in call.path else f"{self.url}{call.path}"
        headers = dict(call.headers or {})
        if auth:
            headers["Authorization"] = f"Bearer {self.api_key}"
        progress = None
        if call.body is not None:
            headers.update(call.body.headers())
            total = int(headers["Content-Length"])
            if on_sent is not None:
                progress = lambda sent: on_sent(sent, total)  # noqa: E731
        for attempt in range(self.retries + 1):
            content = None if call.body is None else call.body.aiter_bytes(progress)
            request = self._http.build_request(call.method, url, params=call.params,
                                               json=call.json, content=content,
                                               headers=headers)
            try:
                response = await self._http.send(request, stream=True)
            except httpx.TransportError as exc:
                raise calls.transport_error(exc, self.url, call.method, url) from exc
            delay = calls.retry_delay(call, response, attempt, self.retries)
            if delay is None:
                break
            await response.aclose()
            await asyncio.sleep(delay)
        try:
            if response.is_error:
                await response.aread()
                raise calls.api_error(response)
            yield response
        except httpx.TransportError as exc:
            raise calls.transport_error(exc, self.url, call.method, url) from exc
        finally:
            await response.aclose()

    # --- sync conversions ---

    async def convert(self, files: Sequence[Upload] = (), *,
                per_file: Sequence[FileOptions] | None = None, source_url: str | None = None,
                save_to_storage: bool = False, **options: Unpack[FileOptions]) -> Conversion:
        """POST /api/convert: convert `files` (paths, or (name, bytes)) and wait for the
        outputs. Options apply to every file; `per_file` gives one set per file. The outputs'
        `download_url` are read with `read()` or `save()`."""
        return await self._call(calls.conversion("/api/convert", files, options, per_file,
                                           source_url, save_to_storage))

    async def compress(self, files: Sequence[Upload] = (), *,
                 per_file: Sequence[FileOptions] | None = None, source_url: str | None = None,
                 save_to_storage: bool = False, **options: Unpack[FileOptions]) -> Conversion:
        """POST /api/compress: shrink `files` in their own format (quality, target size,
        lossless)."""
        return await self._call(calls.conversion("/api/compress", files, options, per_file,
                                           source_url, save_to_storage))

    # --- jobs ---

    async def create_job(self, files: Sequence[Upload] = (), *, job_type: str | None = None,
                   per_file: Sequence[FileOptions] | None = None,
                   source_url: str | None = None, create_archive: bool = False,
                   archive_format: str | None = None, priority: str | None = None,
                   callback_url: str | None = None, callback_secret: str | None = None,
                   idempotency_key: str | None = None, fields: Mapping[str, str] | None = None,
                   on_sent: Callable[[int, int], None] | None = None,
                   **options: Unpack[FileOptions]) -> JobCreated:
        """POST /api/jobs with `files` streamed from disk. `fields` adds form fields by
        their wire names; `on_sent(sent, total)` follows the body's bytes as they leave."""
        return await self._call(calls.create_job(
            files, options, per_file, job_type=job_type, source_url=source_url,
            create_archive=create_archive, archive_format=archive_format, priority=priority,
            callback_url=callback_url, callback_secret=callback_secret, fields=fields,
            idempotency_key=idempotency_key), on_sent)

    async def queue_tool(self, tool: str, file: Upload | None = None, *,
                   source_url: str | None = None, options: Mapping[str, str] | None = None,
                   idempotency_key: str | None = None,
                   on_sent: Callable[[int, int], None] | None = None) -> JobCreated:
        """POST /api/media/{tool} with async=true: run media tool `tool` (thumbnail,
        strip-metadata, inspect, ...) on `file`, or on what the server fetches from
        `source_url`, as a job; `options` are the tool's fields by their wire names. Its
        result's `raw["facts"]` holds what the tool reports besides its output."""
        return await self._call(calls.queue_tool(tool, [file] if file is not None else [],
                                              options or {}, source_url, idempotency_key),
                              on_sent)

    async def get_job(self, job_id: str, *, wait: float = 0.0) -> Job:
        """GET /api/jobs/{id}; with `wait` (seconds, up to 60) the server answers as soon as
        the job is finished, or after `wait` seconds with the job as it is then."""
        return await self._call(calls.get_job(job_id, wait))

    async def list_jobs(self, *, limit: int = 20, offset: int = 0,
                  status: str | None = None) -> JobList:
        return await self._call(calls.list_jobs(limit, offset, status))

    async def cancel_job(self, job_id: str) -> Job:
        """DELETE /api/jobs/{id}: the cancelled job (409 ApiError when it has finished)."""
        return await self._call(calls.cancel_job(job_id))

    async def wait_job(self, job_id: str, *, timeout: float | None = None,
                 wait: float = calls.LONG_WAIT, interval: float = 1.0,
                 on_update: Callable[[Job], None] | None = None) -> Job:
        """Wait until the job is completed or failed, each request waiting up to `wait`
        seconds on the server (a shorter `wait` means more frequent `on_update(job)` calls).
        Raises ClientError when `timeout` seconds pass first."""
        clock = calls.WaitClock(job_id, timeout, wait, interval)
        while True:
            job = await self.get_job(job_id, wait=clock.next_wait())
            if on_update is not None:
                on_update(job)
            if job.finished:
                return job
            await asyncio.sleep(clock.pause_after(job))

    async def download_outputs(self, job: Job, directory: str | Path) -> list[Path]:
        """Save a finished job's outputs (its archive when it has one) into `directory`,
        never overwriting a file there; answers the paths written."""
        return [await self.save_into(url, directory, name) for url, name in calls.outputs(job)]

    # --- downloads ---

    async def read(self, url: str) -> bytes:
        """The bytes behind an output's `download_url` (a signed link or a data: URL)."""
        inline = calls.data_url_bytes(url)
        if inline is not None:
            return inline
        async with self._download(url) as response:
            return await response.aread()

    async def save(self, url: str, path: str | Path) -> Path:
        """Stream what `url` holds to `path` (replacing it); answers the path. A download
        that fails leaves no partial file behind."""
        target = Path(path)
        try:
            with target.open("wb") as fh:
                await self._write(url, fh, None, None)
        except BaseException:
            target.unlink(missing_ok=True)
            raise
        return target

    async def save_into(self, url: str, directory: str | Path, filename: str, *,
                  on_start: Callable[[int | None], None] | None = None,
                  on_received: Callable[[int], None] | None = None) -> Path:
        """Save what `url` holds as `filename` in `directory` without overwriting anything
        (`name-1.ext` when `name.ext` exists); answers the path written. `on_start(size or
        None)` once the size is known, `on_received(bytes so far)` while it streams."""
        path, fh = reserve(Path(directory), safe_filename(filename))
        try:
            with fh:
                await self._write(url, fh, on_start, on_received)
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        return path

    async def _write(self, url: str, fh: Any, on_start: Callable[[int | None], None] | None,
               on_received: Callable[[int], None] | None) -> None:
        inline = calls.data_url_bytes(url)
        if inline is not None:
            if on_start is not None:
                on_start(len(inline))
            fh.write(inline)
            if on_received is not None:
                on_received(len(inline))
            return
        async with self._download(url) as response:
            length = response.headers.get("content-length")
            if on_start is not None:
                on_start(int(length) if length and length.isdigit() else None)
            received = 0
            async for chunk in response.aiter_bytes(CHUNK):
                fh.write(chunk)
                received += len(chunk)
                if on_received is not None:
                    on_received(received)

    @asynccontextmanager
    async def _download(self, url: str) -> AsyncIterator[httpx.Response]:
        if not url.startswith(("http://", "https://")):
            url = f"{self.url}/{url.lstrip('/')}"
        async with self._send(calls.Call("GET", url, lambda r: r), auth=False) as response:
            yield response

    # --- transfers ---

    async def transfer(self, source_url: str | None = None, *,
                       cloud_source: Mapping[str, Any] | None = None,
                       filename: str | None = None, content_type: str | None = None,
                       wait: bool = False, extract: bool = False,
                       extract_options: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """POST /api/transfer into storage (see `Client.transfer`)."""
        return await self._call(calls.transfer(calls.transfer_body(
            source_url, cloud_source=cloud_source, destination="convertly-storage",
            filename=filename, content_type=content_type, wait=wait, extract=extract,
            extract_options=extract_options)))

    # --- storage ---

    async def upload_files(self, files: Sequence[Upload], *,
                     folder_id: str | None = None) -> list[StoredFile]:
        """POST /api/files: store `files` (in a folder); answers their records."""
        return await self._call(calls.upload_files(files, folder_id))

    async def list_files(self, *, folder: str | None = None, search: str | None = None,
                   limit: int | None = None, offset: int | None = None) -> FileList:
        """GET /api/files; `folder` "null" lists the root folder only."""
        return await self._call(calls.list_files(folder, search, limit, offset))

    async def get_file(self, file_id: str) -> StoredFile:
        return await self._call(calls.get_file(file_id))

    async def delete_file(self, file_id: str) -> None:
        await self._call(calls.delete_file(file_id))

    async def list_folders(self) -> list[Folder]:
        return await self._call(calls.list_folders())

    async def create_folder(self, name: str, *, color: str | None = None,
                      parent_id: str | None = None) -> Folder:
        return await self._call(calls.create_folder(name, color, parent_id))

    async def delete_folder(self, folder_id: str) -> None:
        await self._call(calls.delete_folder(folder_id))

    # --- webhooks ---

    async def create_webhook(self, url: str, *, events: Sequence[str] | None = None) -> Webhook:
        """An account endpoint for this key's jobs; its `secret` (shown only here) signs
        every event: check them with `verify_signature`."""
        return await self._call(calls.create_webhook(url, events))

    async def list_webhooks(self) -> list[Webhook]:
        return await self._call(calls.list_webhooks())

    async def delete_webhook(self, webhook_id: str) -> None:
        await self._call(calls.delete_webhook(webhook_id))

