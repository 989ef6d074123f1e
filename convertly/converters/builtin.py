"""The built-in converters, registered the way an extension would register its own."""

from __future__ import annotations

from collections.abc import Iterable

from convertly.converters import archive, image, media, vector
from convertly.converters.registry import Registry
from convertly.models import OutputFormat


def default_registry(unavailable: Iterable[OutputFormat] = ()) -> Registry:
    """The registry with every built-in converter; `unavailable` targets are not listed."""
    registry = Registry(unavailable=frozenset(unavailable))
    image.register(registry)
    vector.register(registry)
    media.register(registry)
    archive.register(registry)
    return registry
