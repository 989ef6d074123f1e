"""Creating a job: once the job is stored and its files are queued, a later failure (here,
noting the job as queued while job state is down) answers an error but leaves the job and its
sources in place for the workers, as the request's cleanup runs."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from convertly import jobs, service
from convertly.errors import StateUnavailableError
from convertly.models import FileSpec, Job, OutputFormat
from convertly.settings import Settings
from tests import images


class SubmittedFails:
    """An executor that queues files but cannot note the job as queued afterwards."""

    def __init__(self) -> None:
        self.queued: list[int] = []

    def check_capacity(self, files: int) -> None:
        pass

    def submit_file(self, job: Job, index: int) -> None:
        self.queued.append(index)

    def submitted(self, job: Job) -> None:
        raise StateUnavailableError()


def test_a_failure_after_the_job_is_stored_keeps_its_sources(tmp_path: Path) -> None:
    svc = service.build_services(Settings(data_dir=tmp_path / "data"))
    _key, record = svc.keys.create("test")
    spooled = tmp_path / "upload-0"
    spooled.write_bytes(images.png(8, 8))
    spec = FileSpec(index=0, filename="a.png", format=OutputFormat.WEBP)
    request = jobs.JobRequest(specs=(spec,), paths=(spooled,))
    executor = SubmittedFails()
    sources = jobs.source_store(svc, record.tenant)
    with pytest.raises(StateUnavailableError):
        asyncio.run(jobs.create(svc, executor, record.tenant, request, sources,
                                "http://test"))
    sources.discard()  # what the endpoint does when no job was answered
    sources.close()
    job = svc.jobs.get(sources.job_id)
    assert job is not None and executor.queued == [0]
    assert svc.storage.exists(service.source_key(record.tenant, job.id, spec))


def test_the_queue_of_a_file_is_the_same_from_its_first_bytes_as_from_its_file(
        tmp_path: Path) -> None:
    import io
    import wave

    from convertly import pipeline
    from convertly.converters.builtin import default_registry
    from convertly.sniff import HEAD_BYTES

    sound = io.BytesIO()
    with wave.open(sound, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(8000)
        out.writeframes(b"\0\0" * 8000)
    registry = default_registry()
    families = set()
    for name, data, fmt in (("a.png", images.png(8, 8), "webp"),
                            ("b.wav", sound.getvalue(), "mp3")):
        path = tmp_path / name
        path.write_bytes(data)
        family = pipeline.task_family(path, fmt, registry)
        assert pipeline.task_family(path, fmt, registry, data[:HEAD_BYTES]) == family
        families.add(family)
    assert families == {"image", "media"}
