"""One embedded-mode server per data directory.

In embedded mode the process that serves the API also converts (its own pool) and watches
(its own watchdog) over the SQLite database in the data directory. A second process on the
same directory — `gunicorn --workers 4`, `uvicorn --workers 2`, a second `convertly serve` —
would take the files the first one's pool holds for lost and convert them again, and sync
requests would wait for results another process announces only to itself. So the server
holds an exclusive lock on `<data dir>/embedded.lock` while it runs, and a second one stops
at start-up saying why. The kernel drops the lock with the process, however it ends.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

LOCK_NAME = "embedded.lock"


class DataDirBusyError(Exception):
    """Another embedded-mode server holds the data directory."""

    def __init__(self, data_dir: Path) -> None:
        super().__init__(
            f"another Convertly server in embedded mode already uses the data directory "
            f"{data_dir} (CONVERTLY_DATA_DIR): run one API process per data directory, or "
            f"set CONVERTLY_BROKER_URL (distributed mode) for several. For more conversion "
            f"processes set CONVERTLY_WORKERS instead.")


class DataDirLock:
    """The held lock of one data directory; `release` once the server has stopped."""

    def __init__(self, fd: int) -> None:
        self._fd: int | None = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # drops the lock
            self._fd = None


def acquire(data_dir: Path) -> DataDirLock:
    """Take the data directory's lock; DataDirBusyError when another process (or another
    app in this one) holds it."""
    data_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(data_dir / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise DataDirBusyError(data_dir) from None
    return DataDirLock(fd)
