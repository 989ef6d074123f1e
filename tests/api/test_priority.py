"""The order waiting work is taken in (convertly.priority), in both modes: a sync conversion
goes ahead of the files of jobs queued before it, a small job ahead of the tail of a large
one, and a job sent with priority=low after later work.

Each test queues a job of more files than the two worker processes convert while the test
sends its next request, then checks how far that job had got when the later work was done:
taken in arrival order, it would have been finished."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.testclient import TestClient

from convertly import priority
from tests import images
from tests.api.support import (
    Tenant,
    assert_error,
    convert_ok,
    create_job,
    get_job,
    post,
    wait_for_job,
)

# About 0.1 s a file to WebP on one core.
PHOTO = images.jpeg(1024, 768)
# Files the two worker processes may still take from an earlier job once the later work is
# queued: what they hold (the embedded pool holds two rounds), a round more while the
# test asks, and slack. In arrival order they would take the whole earlier job.
IN_FLIGHT = 12


def _batch(count: int) -> list[tuple[str, bytes]]:
    return [(f"photo-{i}.jpg", PHOTO) for i in range(count)]


def _done(job: dict[str, Any]) -> int:
    return int(job["completedFiles"]) + int(job["failedFiles"])


def test_a_sync_conversion_goes_ahead_of_queued_job_files(client: TestClient, tenant: Tenant,
                                                          jpeg_bytes: bytes) -> None:
    batch = create_job(client, tenant, _batch(40), format="webp")
    before = _done(get_job(client, tenant, batch))

    convert_ok(client, tenant, [("now.jpg", jpeg_bytes)], format="png")

    # The files already handed to a worker process, and one more each meanwhile.
    assert _done(get_job(client, tenant, batch)) <= before + IN_FLIGHT
    assert wait_for_job(client, tenant, batch)["completedFiles"] == 40


def test_a_small_job_goes_ahead_of_the_tail_of_a_large_one(client: TestClient,
                                                           tenant: Tenant) -> None:
    large = create_job(client, tenant, _batch(40), format="webp")
    small = create_job(client, tenant, _batch(2), format="webp")
    before = _done(get_job(client, tenant, large))

    assert wait_for_job(client, tenant, small)["completedFiles"] == 2

    # The large job's first HEAD_FILES files still go first, the rest wait.
    assert _done(get_job(client, tenant, large)) <= max(before, priority.HEAD_FILES) + IN_FLIGHT
    assert wait_for_job(client, tenant, large)["completedFiles"] == 40


def test_a_low_priority_job_waits_for_later_work(client: TestClient, tenant: Tenant) -> None:
    low = create_job(client, tenant, _batch(30), format="webp", priority="low")
    normal = create_job(client, tenant, _batch(2), format="webp")
    before = _done(get_job(client, tenant, low))

    assert wait_for_job(client, tenant, normal)["completedFiles"] == 2

    job = get_job(client, tenant, low)
    assert job["priority"] == "low"
    assert _done(job) <= before + IN_FLIGHT
    assert wait_for_job(client, tenant, low)["completedFiles"] == 30


def test_a_high_priority_job_goes_ahead_of_every_normal_one(client: TestClient,
                                                             tenant: Tenant) -> None:
    # Small jobs: all their files are first files (HEAD), queued ahead of the high job.
    small = [create_job(client, tenant, _batch(5), format="webp") for _ in range(8)]
    high = create_job(client, tenant, _batch(2), format="webp", priority="high")
    before = sum(_done(get_job(client, tenant, job)) for job in small)

    assert wait_for_job(client, tenant, high)["completedFiles"] == 2

    assert sum(_done(get_job(client, tenant, job)) for job in small) <= before + IN_FLIGHT
    for job in small:
        assert wait_for_job(client, tenant, job)["completedFiles"] == 5


def test_priority_is_shown_and_checked(client: TestClient, tenant: Tenant,
                                       jpeg_bytes: bytes) -> None:
    default = create_job(client, tenant, [("a.jpg", jpeg_bytes)], format="png")
    high = create_job(client, tenant, [("b.jpg", jpeg_bytes)], format="png", priority="HIGH")
    assert wait_for_job(client, tenant, default)["priority"] == "normal"
    assert wait_for_job(client, tenant, high)["priority"] == "high"

    response = post(client, "/api/jobs", tenant, [("c.jpg", jpeg_bytes)], format="png",
                    priority="urgent")
    assert_error(response, 400, "INVALID_FIELD", "priority", "urgent")


@pytest.mark.parametrize(("index", "sent", "level"), [
    (0, "normal", priority.HEAD),
    (priority.HEAD_FILES - 1, "normal", priority.HEAD),
    (priority.HEAD_FILES, "normal", priority.BULK),
    (priority.HEAD_FILES * 5, "high", priority.HIGH),
    (0, "high", priority.HIGH),
    (0, "low", priority.LOW),
])
def test_file_levels(index: int, sent: str, level: int) -> None:
    assert priority.file_level(index, sent) == level
    assert priority.URGENT < priority.HIGH < priority.HEAD < priority.BULK < priority.LOW
