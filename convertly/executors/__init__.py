"""Where conversions run: a local process pool (embedded default) or Celery workers."""

from __future__ import annotations

from typing import TYPE_CHECKING

from convertly.executors.base import Executor

if TYPE_CHECKING:  # at run time the executor modules import the service themselves
    from convertly.service import Services


def build_executor(services: Services) -> Executor:
    """The executor the settings select: Celery when a broker is set, else the local pool."""
    if services.settings.distributed:
        from convertly.executors.celery import CeleryExecutor

        return CeleryExecutor(services.settings, services)
    from convertly.executors.inprocess import InProcessExecutor

    return InProcessExecutor(services.settings, services)
