"""Prometheus metrics: every name the server exports, declared here once.

prometheus-client runs in its multi-process mode in every process that records something
(API processes, the embedded pool's worker processes, Celery worker processes): each
process writes its counts to memory-mapped files in one directory (`setup`) and a scrape
adds up every file there (`exposition`). So several API processes on one host and the pool
processes they start share one directory and one `/metrics` answer.

- API processes and their pool use CONVERTLY_METRICS_DIR (default: `metrics/` under the
  data directory); `setup(..., clean=True)` in an API process removes the files of
  processes that no longer run (a restart starts counting from zero, as Prometheus expects).
- A Celery worker (other hosts) keeps its own directory under its data directory and serves
  it on CONVERTLY_WORKER_METRICS_PORT (`serve_worker_metrics`); Prometheus scrapes each
  worker host there. The API's `/metrics` then holds HTTP, queue, webhook and storage
  figures, and the workers' answers hold their conversions.

The metric objects are module-level, like loggers: prometheus-client keeps its values per
process by design. Queue depth is not a counter: it is read from the executor at scrape
time (`QueueDepth`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
    values,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from convertly.errors import ConvertlyError, ServiceUnavailableError

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
                    60.0)
_CONVERSION_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
                       900.0)

HTTP_REQUESTS = Counter(
    "convertly_http_requests", "HTTP requests answered, by route template and status.",
    ["method", "route", "status"], registry=None,
)
HTTP_DURATION = Histogram(
    "convertly_http_request_duration_seconds",
    "Seconds from a request's arrival to the end of its answer, by route template.",
    ["method", "route"], buckets=_LATENCY_BUCKETS, registry=None,
)
CONVERSIONS = Counter(
    "convertly_conversions",
    "Files converted, by media kind (image, video, ...), source and target format, mode "
    "(sync or job) and outcome (completed; failed: the file's own error, such as an "
    "unsupported pair; error: an unexpected failure or an outage).",
    ["kind", "source", "target", "mode", "outcome"], registry=None,
)
CONVERSION_DURATION = Histogram(
    "convertly_conversion_duration_seconds",
    "Seconds one file's conversion took in a worker process, by media kind and target.",
    ["kind", "target", "mode"], buckets=_CONVERSION_BUCKETS, registry=None,
)
WEBHOOK_DELIVERIES = Counter(
    "convertly_webhook_deliveries",
    "Webhook delivery attempts, by outcome (succeeded, retrying, failed).",
    ["outcome"], registry=None,
)
STORAGE_ERRORS = Counter(
    "convertly_storage_errors",
    "Storage operations that failed for want of the storage (backend local or s3; "
    "reason unavailable or full).",
    ["backend", "reason"], registry=None,
)
QUEUE_DEPTH = "convertly_queue_depth"  # read at scrape time: QueueDepth

# Every metric family name a scrape can show (the Grafana dashboard is held to these).
EXPORTED = frozenset({
    "convertly_http_requests_total", "convertly_http_request_duration_seconds_bucket",
    "convertly_http_request_duration_seconds_sum",
    "convertly_http_request_duration_seconds_count",
    "convertly_conversions_total", "convertly_conversion_duration_seconds_bucket",
    "convertly_conversion_duration_seconds_sum", "convertly_conversion_duration_seconds_count",
    "convertly_webhook_deliveries_total", "convertly_storage_errors_total", QUEUE_DEPTH,
})

RESERVED_BYTES = 1 << 20
_FILE_KINDS = ("counter", "histogram")  # the files the metrics above write (one each)
log = logging.getLogger("convertly.metrics")
_lock = threading.Lock()
_directory: list[Path] = []  # this process's metrics directory, once `setup` chose it
_PID_FILE = re.compile(r"_(\d+)\.db$")


def setup(directory: Path, *, clean: bool = False) -> Path:
    """Record this process's metrics in `directory` (created), once per process: the first
    call wins and later ones return its directory, because prometheus-client keeps one
    value store per process. `clean` removes the files of processes that no longer run
    (an API process at start). prometheus-client reads its directory from the
    PROMETHEUS_MULTIPROC_DIR environment variable, which child processes inherit."""
    with _lock:
        if _directory:
            return _directory[0]
        directory.mkdir(parents=True, exist_ok=True)
        if clean:
            _remove_dead(directory)
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(directory)
        _directory.append(directory)
    reserve()
    return directory


def reserve() -> bool:
    """Allocate this process's count files (a process forked from one that called `setup`
    calls it too, first thing). prometheus-client writes them through a memory map of a
    sparse file, and a write into a hole of a file on a full disk is SIGBUS: the process
    dies. So the files get their blocks now, zero-filled (RESERVED_BYTES each, room for
    thousands of label sets). When the disk has no room for them, this process's counts
    stay in its memory (not in /metrics) and a warning says so; the process keeps serving.
    """
    where = directory()
    if where is None:
        return False
    pid = os.getpid()
    try:
        for kind in _FILE_KINDS:
            path = where / f"{kind}_{pid}.db"
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                if os.fstat(fd).st_size < RESERVED_BYTES:
                    os.posix_fallocate(fd, 0, RESERVED_BYTES)
            finally:
                os.close(fd)
    except OSError as exc:
        for kind in _FILE_KINDS:  # half-made files would break every scrape
            with contextlib.suppress(OSError):
                (where / f"{kind}_{pid}.db").unlink()
        log.warning("metrics of process %d are not shared through %s (%s): /metrics does "
                    "not show them", pid, where, exc)
        values.ValueClass = values.MutexValue
        return False
    values.ValueClass = values.MultiProcessValue()  # type: ignore[no-untyped-call]
    return True


def directory() -> Path | None:
    return _directory[0] if _directory else None


def _remove_dead(directory: Path) -> None:
    for path in directory.glob("*.db"):
        match = _PID_FILE.search(path.name)
        if match is None or not _alive(int(match.group(1))):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class QueueDepth(Collector):
    """`convertly_queue_depth{queue, priority}`: files waiting, read from the executor's
    queues at scrape time (`depth()`); nothing when they cannot be read (the broker is
    down: the scrape still answers)."""

    def __init__(self, depth: Callable[[], Mapping[tuple[str, str], int]]) -> None:
        self.depth = depth

    def collect(self) -> Iterable[Metric]:
        family = GaugeMetricFamily(QUEUE_DEPTH, "Files waiting to be converted, by queue and "
                                   "priority level.", labels=["queue", "priority"])
        try:
            depth = self.depth()
        except Exception:
            depth = {}
        for (queue, level), count in sorted(depth.items()):
            family.add_metric([queue, level], count)
        yield family


def exposition(extra: Iterable[Collector] = ()) -> bytes:
    """The text exposition of every process's metrics in this process's directory, plus
    `extra` collectors."""
    registry = CollectorRegistry()
    where = directory()
    if where is not None:
        multiprocess.MultiProcessCollector(registry, path=str(where))  # type: ignore[no-untyped-call]
    for collector in extra:
        registry.register(collector)
    return generate_latest(registry)


@contextlib.contextmanager
def conversion(labels: Callable[[], tuple[str, ...]], mode: str) -> Iterator[None]:
    """Count one file's conversion and its duration; `labels` (kind, source format, target
    format) is read at the end: they are known only once the file was sniffed and planned.
    A ConvertlyError counts as the file's own failure, anything else as an error; both
    propagate."""
    started = time.perf_counter()
    outcome = "error"
    try:
        yield
        outcome = "completed"
    except ServiceUnavailableError:
        raise
    except ConvertlyError:
        outcome = "failed"
        raise
    finally:
        kind, source, target = labels()
        CONVERSIONS.labels(kind, source, target, mode, outcome).inc()
        CONVERSION_DURATION.labels(kind, target, mode).observe(time.perf_counter() - started)


def serve_worker_metrics(port: int, address: str = "0.0.0.0") -> None:
    """Serve this process's metrics directory over HTTP on `port` (a Celery worker's main
    process, for Prometheus to scrape each worker host)."""
    from prometheus_client import start_http_server

    registry = CollectorRegistry()
    where = directory()
    if where is not None:
        multiprocess.MultiProcessCollector(registry, path=str(where))  # type: ignore[no-untyped-call]
    start_http_server(port, addr=address, registry=registry)
