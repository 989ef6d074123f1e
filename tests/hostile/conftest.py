"""Fixtures of the hostile suite: a loopback listener nobody may reach, the corpus (built
once per session), and one real server per mode with a memory sampler on its processes."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from convertly.settings import Settings
from tests.api.support import MODES, SHARED_LIMITS
from tests.hostile import corpus
from tests.hostile.harness import HostileServer, Listener, MemorySampler, Report

MIB = 1024 * 1024
# The server's limits during the corpus: small, so that the corpus stays small.
LIMITS = {
    "workers": 2,
    "max_file_bytes": 4 * MIB,
    "max_files": 20,
    "max_request_bytes": 12 * MIB,
    "max_pixels": 25_000_000,
    "max_pdf_pages": 20,
    "max_media_seconds": 30,
    "max_archive_entries": 1000,
    "max_extracted_bytes": 32 * MIB,
    "trace_timeout": 20,
    "task_max_memory": 1024 * MIB,
    "task_cpu_seconds": 20,
    # No planned recycling during the corpus: a replaced worker process is a crashed one.
    "worker_max_tasks_per_child": 10_000,
    **SHARED_LIMITS,  # ~300 hostile requests, wrong keys among them, from one address
}


@dataclass
class Corpus:
    cases: list[corpus.Case]
    listener: Listener
    marker: str
    seconds: float


@dataclass
class HostileEnv:
    mode: str
    server: HostileServer
    sampler: MemorySampler
    corpus: Corpus
    report: Report


@pytest.fixture(scope="session")
def hostile_corpus() -> Iterator[Corpus]:
    listener = Listener()
    marker = f"convertly-escaped-{uuid.uuid4().hex[:12]}"
    started = time.monotonic()
    cases = corpus.build(listener.port, marker, max_file_bytes=LIMITS["max_file_bytes"],
                         max_files=LIMITS["max_files"],
                         max_request_bytes=LIMITS["max_request_bytes"])
    try:
        yield Corpus(cases, listener, marker, time.monotonic() - started)
    finally:
        listener.close()


@pytest.fixture(scope="module", params=MODES)
def hostile(request: pytest.FixtureRequest, hostile_corpus: Corpus,
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[HostileEnv]:
    mode: str = request.param
    settings = Settings(data_dir=tmp_path_factory.mktemp(f"hostile-{mode}"), **LIMITS)
    cluster = None
    if mode == "distributed":
        cluster = request.getfixturevalue("cluster")
        settings = cluster.settings_for(settings)
    server = HostileServer(mode, settings, cluster)
    server.start()
    sampler = MemorySampler(server.roots())
    sampler.start()
    try:
        yield HostileEnv(mode, server, sampler, hostile_corpus, Report(mode))
    finally:
        sampler.stop()
        server.stop()


@pytest.fixture(scope="session")
def small_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HostileServer]:
    """An embedded server with small upload limits, for the fuzz run and the streaming tests."""
    settings = Settings(data_dir=tmp_path_factory.mktemp("small"), workers=1,
                        max_file_bytes=1 * MIB, max_request_bytes=4 * MIB,
                        **SHARED_LIMITS)  # the fuzz run sends what it likes
    server = HostileServer("embedded", settings)
    server.start()
    try:
        yield server
    finally:
        server.stop()
