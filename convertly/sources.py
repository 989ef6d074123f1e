"""Storing a job's sources while the rest of its request is still arriving.

On S3 storage a request's files are uploaded to the bucket as each one finishes spooling,
in background threads, so that when the body ends they are (nearly) all stored and the
workers start at once: the upload of 50 photos otherwise delays every conversion by the
time those puts take, and on a small machine the puts then compete with the workers for
the CPU. The job id is chosen before the job exists, since the keys are job-scoped. On
local disk, storing is a rename and this is not used.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import logging
from collections.abc import Iterator
from pathlib import Path

from convertly import service
from convertly.models import FileSpec

log = logging.getLogger("convertly.service")


class SourceUploader:
    """Uploads spooled files under `job_id`'s prefix as they arrive. The owner calls either
    `landed()` (the job is being created with these sources) or `discard()` (it is not: the
    request failed or replayed an earlier job), and then `close()`."""

    def __init__(self, svc: service.Services, tenant: str) -> None:
        self.svc = svc
        self.tenant = tenant
        self.job_id = service.new_job_id()
        self._pool = concurrent.futures.ThreadPoolExecutor(
            service.UPLOAD_THREADS, thread_name_prefix="source-upload")
        self._futures: dict[int, concurrent.futures.Future[int]] = {}

    def add(self, index: int, filename: str, path: Path) -> None:
        """Start uploading file `index` (the spooled copy stays; the form's cleanup removes
        it). Returns at once."""
        spec = FileSpec(index=index, filename=filename)
        key = service.source_key(self.tenant, self.job_id, spec)
        self._futures[index] = self._pool.submit(self.svc.storage.put_file, key, path)

    def stored(self, specs: list[FileSpec]) -> bool:
        """Whether every spec's source was started here under the same name."""
        return len(specs) == len(self._futures) and all(
            s.index in self._futures for s in specs)

    def landed(self) -> Iterator[int]:
        """The indexes of the uploads as each one ends, finished ones first; raises the
        first failure."""
        index_of = {future: index for index, future in self._futures.items()}
        for future in concurrent.futures.as_completed(index_of):
            future.result()
            yield index_of[future]

    def discard(self) -> None:
        """Stop what has not started, wait for the rest, and delete what was stored."""
        for future in self._futures.values():
            future.cancel()
        concurrent.futures.wait(list(self._futures.values()))
        if self._futures:
            with contextlib.suppress(Exception):
                self.svc.storage.delete_prefix(service.job_prefix(self.tenant, self.job_id))
        self._futures.clear()

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
