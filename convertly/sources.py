"""Storing a job's sources, the one way it is done.

On S3 a request's files are uploaded to the bucket as each one finishes spooling, in
background threads, so that when the body ends they are (nearly) all stored and the workers
start at once: the upload of 50 photos otherwise delays every conversion by the time those
puts take, and on a small machine the puts then compete with the workers for the CPU. A
source that was not started early (one fetched from a sourceUrl) goes the same way when the
job is created. On local disk storing is a rename, done when the job is created, in the
calling thread. The job id is chosen before the job exists, since the keys are job-scoped.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from convertly.storage.base import Storage

UPLOAD_THREADS = 8  # sources put to S3 at once


class SourceStore:
    """Stores the sources of job `job_id` at `key_for(index, filename)` under `prefix`.

    `start()` may begin a file while the request is still arriving; `store()` stores every
    file once the job exists and yields each index as its source lands. When the job is not
    created after all, `discard()` deletes what was stored. The owner calls `close()`."""

    def __init__(self, storage: Storage, job_id: str, prefix: str,
                 key_for: Callable[[int, str], str]) -> None:
        self.storage = storage
        self.job_id = job_id
        self.prefix = prefix
        self.key_for = key_for
        self._pool: concurrent.futures.ThreadPoolExecutor | None = None
        self._futures: dict[int, concurrent.futures.Future[int]] = {}

    def start(self, index: int, filename: str, path: Path) -> None:
        """On remote storage, start uploading file `index` (the spooled copy stays; the
        form's cleanup removes it). Returns at once; does nothing on local disk."""
        if self.storage.remote:
            self._put(index, filename, path, move=False)

    def store(self, files: Sequence[tuple[int, str, Path]]) -> Iterator[int]:
        """Store each (index, filename, path) not started already, moving the spooled file,
        and yield the indexes as the sources land, finished ones first; raises the first
        failure."""
        for index, filename, path in files:
            if index not in self._futures:
                self._put(index, filename, path, move=True)
        # Landed ones first, in file order (as_completed would yield them in set order, and
        # the order files are queued in is the order they are converted in); then the rest
        # as they land.
        waiting = {}
        for index in sorted(self._futures):
            future = self._futures[index]
            if future.done():
                future.result()
                yield index
            else:
                waiting[future] = index
        for future in concurrent.futures.as_completed(waiting):
            future.result()
            yield waiting[future]

    def commit(self) -> None:
        """The job exists now and owns what was stored: `discard()` no longer deletes it."""
        self._futures.clear()

    def discard(self) -> None:
        """Stop what has not started, wait for the rest, and delete what was stored."""
        for future in self._futures.values():
            future.cancel()
        concurrent.futures.wait(list(self._futures.values()))
        if self._futures:
            with contextlib.suppress(Exception):
                self.storage.delete_prefix(self.prefix)
        self._futures.clear()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)

    def _put(self, index: int, filename: str, path: Path, *, move: bool) -> None:
        key = self.key_for(index, filename)

        def put() -> int:
            self.storage.put_file(key, path, move=move)
            return index

        if not self.storage.remote:  # a rename: no thread needed
            future: concurrent.futures.Future[int] = concurrent.futures.Future()
            future.set_result(put())
            self._futures[index] = future
            return
        if self._pool is None:
            self._pool = concurrent.futures.ThreadPoolExecutor(
                UPLOAD_THREADS, thread_name_prefix="source-upload")
        self._futures[index] = self._pool.submit(put)
