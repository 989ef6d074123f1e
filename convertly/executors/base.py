"""The executor protocol: runs job files and sync conversions somewhere other than the event
loop, and makes sure every accepted job reaches a final state."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from convertly.errors import QueueFullError
from convertly.models import ConvertedFile, FileSpec, Job


class Executor(Protocol):
    async def start(self) -> None:
        """Begin accepting work and resume every unfinished job found in the job store."""
        ...

    async def stop(self) -> None:
        """Stop; work not yet done stays recorded as pending and resumes on the next start."""
        ...

    def check_capacity(self, files: int) -> None:
        """Raise QueueFullError when `files` more files cannot be queued now."""
        ...

    def submit(self, job: Job) -> None:
        """Queue every pending file of a stored job; the job is finalised when all are done."""
        ...

    def submit_file(self, job: Job, index: int) -> None:
        """Queue one file of a stored job as soon as its source is in storage, so
        conversions start while the rest of the upload is still being stored. Safe to call
        from any thread. `submitted` follows once every file went this way."""
        ...

    def submitted(self, job: Job) -> None:
        """Every file of `job` was queued through `submit_file`."""
        ...

    def submit_stream(self, stream_id: str) -> None:
        """Queue a stored video stream's encoding: a task per rendition not yet encoded
        (media work), then, once the last is recorded, its packaging step
        (`convertly.videostreams`). Safe to repeat: done work is skipped."""
        ...

    def cancel(self, job_id: str) -> None:
        """The job was just cancelled in the job store (which refuses its files from then
        on, and whose running files stop themselves, `executors.guard`): forget its files
        still waiting here, if this executor holds any. Call it from the event loop."""
        ...

    async def convert(self, src: Path, spec: FileSpec, workdir: Path) -> ConvertedFile:
        """Run one sync conversion (`pipeline.convert_path`) and return its output, which is
        written inside `workdir`; the caller owns `workdir`."""
        ...

    def queued_files(self) -> int: ...

    def queue_depth(self) -> dict[tuple[str, str], int]:
        """Files waiting, by (queue, priority level name, `priority.LEVEL_NAMES`), for the
        metrics. Raises ServiceUnavailableError when the queues cannot be read."""
        ...

    async def held_files(self, jobs: list[Job]) -> set[tuple[str, int]]:
        """Of the pending files of `jobs` (read from the job store just before), the (job id,
        file index) pairs this executor accounts for: waiting in a queue, running or held by
        a worker, waiting for a retry, or of a job whose files are still being submitted.
        The watchdog (`convertly.watchdog`) takes the others for lost. Raises
        ServiceUnavailableError when the queues cannot be read."""
        ...

    async def requeue_file(self, job: Job, index: int) -> None:
        """Queue one pending file of a stored job again (the watchdog found it lost). Harmless
        if it was in fact still queued or running: `pipeline.run_file` skips a file that has
        its result. Raises ServiceUnavailableError when the queue cannot be reached."""
        ...

    def workers(self) -> dict[str, int] | None:
        """Live workers per queue, when conversions run in other processes (None here)."""
        ...


def ensure_capacity(queued: int, files: int, limit: int) -> None:
    """Raise QueueFullError when `files` more files would pass `limit` queued files."""
    if queued + files > limit:
        raise QueueFullError(
            f"The queue is full ({queued} files waiting, limit "
            f"CONVERTLY_MAX_QUEUED_FILES={limit}); retry in a few seconds."
        )
