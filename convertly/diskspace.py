"""Full disks: recognising one behind a library's exception, and how much room is left.

Every place that writes (the upload spool, local storage, SQLite, the converters' scratch
directory, S3, Redis) translates "full" at its own boundary into StorageFullError through
`full`, which also writes the ERROR line naming what is full. Recognised: OSError with errno
ENOSPC or EDQUOT, SQLite's SQLITE_FULL result code, and libvips' report of either errno,
anywhere in the exception's chain (`raise ... from` / the exception being handled).
"""

from __future__ import annotations

import errno
import logging
import os
import shutil
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from convertly.errors import StorageFullError

log = logging.getLogger("convertly.storage")

FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})
# libvips passes an OS error on only as text in its error log (pyvips.Error.detail), written
# by vips_error_system as "system error: " + strerror(errno): these are exactly that text
# for the errnos above, from the same C library.
_LIBVIPS_FULL = tuple(f"system error: {os.strerror(n)}" for n in sorted(FULL_ERRNOS))


def _is_full(exc: BaseException) -> bool:
    if isinstance(exc, OSError):
        return exc.errno in FULL_ERRNOS
    if isinstance(exc, sqlite3.Error):
        # The primary result code (the low byte) of an extended one.
        return (getattr(exc, "sqlite_errorcode", 0) & 0xFF) == sqlite3.SQLITE_FULL
    log_text = getattr(exc, "detail", None)  # pyvips.Error's copy of the libvips error log
    return isinstance(log_text, str) and any(line in log_text for line in _LIBVIPS_FULL)


def is_full(exc: BaseException) -> bool:
    """Whether `exc`, or an exception it was raised from or while handling, says a disk is
    full."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, StorageFullError) or _is_full(current):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False


def full(what: str, exc: BaseException | None = None) -> StorageFullError:
    """The StorageFullError to raise (`from exc`), after an ERROR line naming `what` is full.
    An exception that already is one is passed on, logged once."""
    if isinstance(exc, StorageFullError):
        return exc
    cause = f" ({type(exc).__name__}: {exc})" if exc is not None else ""
    log.error("%s is full; requests that store data get 507 STORAGE_FULL and job files wait "
              "until space is freed%s", what, cause)
    return StorageFullError()


@contextmanager
def room(what: str) -> Iterator[None]:
    """Around a write to `what`: a full disk behind whatever the block raises becomes
    StorageFullError (`full`); anything else passes unchanged."""
    try:
        yield
    except StorageFullError:
        raise  # translated (and logged) already, by a block inside this one
    except Exception as exc:
        if is_full(exc):
            raise full(what, exc) from exc
        raise


def free_bytes(path: Path) -> int:
    """Bytes free for this process on the filesystem holding `path`."""
    return shutil.disk_usage(path).free


def nearly_full(path: Path, margin: int = 1024 * 1024) -> bool:
    """Whether the filesystem holding `path` has less than `margin` bytes free: a failed
    write there most likely failed for lack of room (some libraries, libvips among them,
    report a failed write without its errno)."""
    try:
        return free_bytes(path) < margin
    except OSError:
        return False
