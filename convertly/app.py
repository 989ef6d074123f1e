"""The application factory: `create_app(settings=None, *, services=None, executor=None)`.

Called with no argument it reads the settings from the environment (and `.env`), so any ASGI
server can run it as a factory: `uvicorn --factory convertly.app:create_app`, gunicorn's
`-k uvicorn.workers.UvicornWorker 'convertly.app:create_app()'`, `convertly serve --workers N`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import ClientDisconnect

from convertly import datadirlock, logs, metrics, retention, service, tracing, watchdog
from convertly.api import errors as api_errors
from convertly.api.observe import Observe
from convertly.api.routes import ROUTES
from convertly.errors import ConvertlyError
from convertly.executors import build_executor
from convertly.executors.base import Executor
from convertly.fetches import FetchPool
from convertly.settings import Settings
from convertly.webhooks import Dispatcher

log = logging.getLogger("convertly")

MAINTENANCE_INTERVAL = 60.0


def create_app(
    settings: Settings | None = None,
    *,
    services: service.Services | None = None,
    executor: Executor | None = None,
) -> Starlette:
    """Build the ASGI app. Settings default to the environment's, collaborators to what the
    settings select."""
    from_environment = settings is None
    if settings is None:
        settings = Settings.from_env()
        # Started by an ASGI server (or a process of `convertly serve --workers N`): the app's
        # and the server's lines in one format, as `convertly serve` sets them up.
        logs.configure(settings.log_level, settings.log_format)
    metrics.setup(settings.metrics_path, clean=True)  # before any count (and the pool)
    services = services or service.build_services(settings)
    if from_environment:
        _warn_without_keys(services)
    executor = executor or build_executor(services)
    dispatcher = Dispatcher(services)
    fetches = FetchPool(settings.fetch_concurrency, settings.fetch_tenant_concurrency,
                        settings.fetch_tenant_queue)
    dog = watchdog.Watchdog(services, executor)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        # Embedded mode: one server per data directory (convertly/datadirlock.py).
        lock = None if settings.distributed else _lock_data_dir(settings)
        await executor.start()
        maintenance = asyncio.create_task(_maintenance(services))
        looking = asyncio.create_task(dog.run())
        sender = asyncio.create_task(dispatcher.run())
        listener = None
        channel = services.events.channel
        if channel is not None:
            # Jobs finish in other processes; their ids arrive on the state's channel.
            listener = asyncio.create_task(channel.listen(services.events))
        try:
            yield
        finally:
            if listener is not None:
                listener.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await listener
            fetches.close()
            # Queued transfers (POST /api/transfer) were just stopped: let them record it.
            transfers = list(app.state.transfers)
            if transfers:
                await asyncio.wait(transfers, timeout=10)
            dispatcher.stop()
            await sender
            for task in (looking, maintenance):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await executor.stop()
            if lock is not None:
                lock.release()
            traced = getattr(app.state, "tracer_provider", None)
            if traced is not None:
                await asyncio.to_thread(traced.shutdown)  # sends the spans still batched

    app = Starlette(
        routes=ROUTES,
        lifespan=lifespan,
        middleware=[Middleware(Observe)],
        exception_handlers={
            ConvertlyError: api_errors.handle_convertly_error,
            HTTPException: api_errors.handle_http_error,
            ClientDisconnect: api_errors.handle_client_gone,
            Exception: api_errors.handle_unexpected,
        },
    )
    app.state.services = services
    app.state.executor = executor
    app.state.settings = settings
    app.state.dispatcher = dispatcher
    app.state.fetches = fetches
    app.state.transfers = set()
    app.state.watchdog = dog
    if tracing.enabled(settings):
        app.state.tracer_provider = tracing.instrument_app(app, settings)
    return app


def _warn_without_keys(services: service.Services) -> None:
    """Under an ASGI server nobody sees a key printed at start-up (`convertly serve` creates
    and prints the first one), and several processes would each make one: say how instead."""
    with contextlib.suppress(ConvertlyError):
        if services.keys.active_count() == 0:
            log.warning("no API key exists yet: create one with "
                        "`convertly keys create --name NAME` (same settings as this server)")


def _lock_data_dir(settings: Settings) -> datadirlock.DataDirLock:
    try:
        return datadirlock.acquire(settings.data_dir)
    except datadirlock.DataDirBusyError as exc:
        log.error("%s", exc)  # one line before the server's traceback
        raise


async def _maintenance(services: service.Services) -> None:
    """Remove expired short-lived outputs, once a minute."""
    while True:
        try:
            removed = await asyncio.to_thread(retention.purge_expired, services)
            if removed:
                log.info("removed %d expired temporary files", removed)
        except Exception:
            log.exception("maintenance failed")
        await asyncio.sleep(MAINTENANCE_INTERVAL)
