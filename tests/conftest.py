"""Fixtures shared by every test package (small generated test images, the distributed-mode
cluster), and which tests are slow."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests import images
from tests.cluster import Cluster

# The slow tests, marked here in one place: `make test-fast` (pytest -m "not slow") runs the
# rest in well under two minutes on 2 cores; `make test` runs everything. Chosen with
# `pytest --durations=0`: together these are about 90 % of the suite's time. A test is slow
# when its file is under one of SLOW_PATHS, when it runs in distributed mode or on S3 (real
# redis-server, SeaweedFS and Celery worker processes), or when it is one of SLOW_TESTS
# (over about 1.5 s each).
SLOW_PATHS = (
    "tests/hostile/",  # the corpus, fuzzing, poison files and task limits
    "tests/distributed/",  # worker processes killed, restarted and leased
    "tests/dashboard/",  # a real browser
    "tests/deploy/",
    "tests/test_matrix.py",  # every (source, target) pair
    "tests/converters/test_media.py",  # ffmpeg
    "tests/converters/test_tools_media.py",  # ffmpeg: every audio and video tool
    "tests/api/test_cli.py",  # the command as a subprocess, against real servers
    "tests/api/test_cli_client.py",
    "tests/api/test_cli_redis.py",  # the command against real redis-servers that refuse it
    "tests/api/test_servers.py",  # uvicorn, gunicorn and `serve --workers` as processes
    "tests/api/test_connections.py",  # `convertly serve` and its client timeouts, on sockets
    "tests/api/test_priority.py",
    "tests/api/test_watchdog.py",  # lost files healed, in both modes
    "tests/api/test_full_disk.py",  # a tmpfs filled up, a job waiting for space to return
    "tests/api/test_slow_outside.py",  # trickling origins and receivers, cut at deadlines
    "tests/storage/test_credentials.py",  # SeaweedFS, with STS and IMDS played on loopback
)
SLOW_PARAMETERS = {"distributed", "s3"}
SLOW_TESTS = {
    "tests/api/test_media_tools.py::test_async_strip_metadata_is_a_job_on_the_media_queue",
    "tests/converters/tools/test_strip_metadata.py::test_audio_loses_id3_tags",
    "tests/converters/tools/test_strip_metadata.py::"
    "test_video_loses_container_tags_and_keeps_streams_uncopied",
    "tests/api/test_cancel.py::test_cancel_a_processing_job",
    "tests/api/test_client_package.py::test_installs_alone_in_a_fresh_venv",
    "tests/api/test_jobs.py::test_each_files_queue_is_sniffed_from_the_bytes_that_streamed_in",
    "tests/api/test_image_tools.py::test_an_async_video_watermark_is_a_job_on_the_media_queue",
    "tests/api/test_longpoll.py::test_the_http_client_waits_on_the_server",
    "tests/api/test_longpoll.py::test_wait_ends_after_the_timeout_with_the_unfinished_job",
    "tests/api/test_restart.py::test_unfinished_jobs_complete_after_a_restart",
    "tests/api/test_retention.py::test_expired_jobs_are_removed_with_their_files",
    "tests/api/test_stream_tracks.py::test_chapters_poster_and_thumbnails",
    "tests/api/test_streams.py::test_a_stored_video_becomes_an_hls_and_dash_ladder",
    "tests/api/test_streams.py::test_embedded_a_stream_survives_its_pool_process_killed",
    "tests/api/test_uploads.py::test_local_upload_streams_to_disk",
    # on the session's S3 server (SeaweedFS) in embedded mode too
    "tests/api/test_transfer.py::test_s3_key_and_prefix_with_request_credentials",
    "tests/api/test_webhooks.py::test_a_failed_delivery_can_be_retried",
    "tests/api/test_webhooks.py::test_a_failing_receiver_is_retried_in_order",
    "tests/api/test_webhooks.py::test_pending_deliveries_survive_a_restart",
    "tests/converters/test_tools_overlay.py::"
    "test_a_video_gets_the_mark_on_every_frame_and_keeps_its_audio",
    "tests/converters/test_vector.py::"
    "test_photo_is_posterised_at_a_pixel_budget_and_shown_at_full_size",
    "tests/converters/test_vector.py::test_trace_over_its_time_limit_is_stopped",
    "tests/storage/test_payload_signing.py::test_unsigned_bodies_are_taken_by_the_server_whole",
    "tests/streams/test_encode.py::test_renditions_package_into_hls_and_dash",
    "tests/streams/test_videostreams.py::test_the_join_and_a_redelivered_rendition",
    "tests/storage/test_stalled_server.py::test_check_waits_seconds_not_the_read_timeout",
    "tests/storage/test_storage_contract.py::test_delete_prefix_beyond_one_batch",
    "tests/storage/test_storage_contract.py::test_server_down_then_back",
    "tests/storage/test_storage_contract.py::test_storage_built_while_server_is_down",
    "tests/test_tracing.py::test_a_job_is_one_trace_from_the_request_to_the_worker",
    "tests/test_workdir.py::test_a_relative_data_dir_serves_the_external_programs_too",
    "tests/test_backup.py::test_backup_while_writing_then_restore",
    "tests/test_backup.py::"
    "test_backup_refuses_a_used_destination_and_says_what_to_do_when_distributed",
    "tests/test_signing.py::test_rotating_the_secret_keeps_outstanding_links",
}


def _is_slow(item: pytest.Item) -> bool:
    nodeid = item.nodeid
    if nodeid.startswith(SLOW_PATHS) or nodeid.partition("[")[0] in SLOW_TESTS:
        return True
    callspec = getattr(item, "callspec", None)
    return callspec is not None and not SLOW_PARAMETERS.isdisjoint(callspec.id.split("-"))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if _is_slow(item):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """Redis and an S3 service for distributed-mode tests, started once per session."""
    running = Cluster(tmp_path_factory.mktemp("cluster"))
    running.start()
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="session")
def jpeg_bytes() -> bytes:
    """A 320x240 photo-like JPEG (quality 90)."""
    return images.jpeg(320, 240)


@pytest.fixture(scope="session")
def png_bytes() -> bytes:
    """A 320x240 photo-like RGB PNG."""
    return images.png(320, 240)
