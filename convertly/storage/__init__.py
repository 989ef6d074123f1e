"""Object storage for sources and outputs: local disk (embedded default) or S3."""

from __future__ import annotations

from convertly.settings import Settings
from convertly.storage.base import Storage


def build_storage(settings: Settings) -> Storage:
    """The storage the settings select."""
    from convertly.storage.local import LocalStorage

    return LocalStorage(settings.data_dir / "storage")
