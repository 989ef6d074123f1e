"""The health probes.

- `GET /livez`: the process is up and its event loop answers. It calls nothing else, so a
  dependency that is down (Redis, the S3 server) never makes it fail: the liveness probe,
  whose failure restarts the process.
- `GET /readyz`: this process can serve requests now: the storage, the job state (SQLite or
  Redis), the queue (in distributed mode the broker's Redis) and the data directory's free
  space all answer. 503 names what is down: the readiness probe, whose failure takes the
  process out of the load balancer until it answers again.
- `GET /healthz`: the older probe, kept as it was: the same checks but the job state's, plus
  the queue depth, the live workers and the watchdog's findings.

The checks run at once, each in a thread, so a probe takes as long as the slowest of them
(a stalled storage is given up after 3 s, a Redis that does not answer after 3 s).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from convertly import diskspace, watchdog
from convertly.api.requests import executor, services
from convertly.errors import ConvertlyError
from convertly.service import Services

log = logging.getLogger(__name__)

OK = "ok"


async def livez(request: Request) -> Response:
    return JSONResponse({"status": OK}, headers={"Cache-Control": "no-store"})


async def readyz(request: Request) -> Response:
    svc = services(request)
    pool = executor(request)
    checks: dict[str, Callable[[], object]] = {
        "storage": svc.storage.check,
        "state": lambda: _state(svc),
        "queue": pool.queued_files,
    }
    if svc.settings.min_free_bytes:
        checks["disk"] = lambda: _disk(svc)
    names = list(checks)
    found = await asyncio.gather(*(_run(checks[name]) for name in names))
    results = dict(zip(names, found, strict=True))
    down = [name for name, result in results.items() if result != OK]
    body: dict[str, Any] = {"status": "ready" if not down else "unavailable",
                            "checks": results}
    if down:
        body["down"] = down
    return JSONResponse(body, status_code=503 if down else 200,
                        headers={"Cache-Control": "no-store"})


async def _run(check: Callable[[], object]) -> str:
    """"ok", or what is wrong: the public message of a ConvertlyError (a disk check's own
    message comes back as the check's result)."""
    try:
        result = await asyncio.to_thread(check)
    except ConvertlyError as exc:
        return exc.message
    except Exception as exc:  # a probe reports, it does not answer 500
        log.warning("readiness check failed", exc_info=True)
        return f"check failed: {type(exc).__name__}"
    return result if isinstance(result, str) else OK


def _state(svc: Services) -> None:
    """One read of the job state: the watchdog's record, a single row or hash."""
    svc.jobs.watch_report()


def _disk(svc: Services) -> str:
    minimum = svc.settings.min_free_bytes
    try:
        free = diskspace.free_bytes(svc.settings.data_dir)
    except OSError as exc:
        return f"cannot read the free space of the data directory: {exc.strerror}"
    if free < minimum:
        return (f"{free} bytes free in the data directory, below CONVERTLY_MIN_FREE_BYTES "
                f"({minimum})")
    return OK


async def healthz(request: Request) -> Response:
    svc = services(request)
    checks: dict[str, str] = {}
    status = 200
    try:
        await asyncio.to_thread(svc.storage.check)
        checks["storage"] = OK
    except ConvertlyError as exc:
        checks["storage"] = exc.message
        status = 503
    if svc.settings.min_free_bytes:
        checks["disk"] = await asyncio.to_thread(_disk, svc)
        if checks["disk"] != OK:
            status = 503
    pool = executor(request)
    queued: int | None = None
    workers: dict[str, int] | None = None
    try:
        queued, workers = await asyncio.to_thread(
            lambda: (pool.queued_files(), pool.workers()))
        checks["queue"] = OK
    except ConvertlyError as exc:
        checks["queue"] = exc.message
        status = 503
    body: dict[str, Any] = {"status": "ok" if status == 200 else "degraded", "checks": checks,
                            "queuedFiles": queued}
    if workers is not None:
        body["workers"] = workers
    body["watchdog"] = None  # unknown while the job store (or the queue's Redis) is away
    if checks["queue"] == OK:
        with contextlib.suppress(ConvertlyError):
            found = await asyncio.to_thread(watchdog.report, svc)
            body["watchdog"] = {"stuckFiles": found.stuck_files, "requeued": found.requeued}
    return JSONResponse(body, status_code=status)
