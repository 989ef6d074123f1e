"""Local-disk storage: atomic writes (temp file + rename), keys confined to the root. A write
that finds the disk full raises StorageFullError (and logs which directory is full)."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from convertly import diskspace, metrics
from convertly.errors import StorageFullError, StorageUnavailableError
from convertly.storage.base import check_key


class LocalStorage:
    remote = False

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        self._tmp = self.root / ".tmp"
        self._tmp.mkdir(exist_ok=True)

    def _path(self, key: str) -> Path:
        path = (self.root / check_key(key)).resolve()
        # check_key already rules out `..`; this guards against symlinks planted in the root.
        if not path.is_relative_to(self.root) or path == self.root:
            raise FileNotFoundError(key)
        return path

    def _commit(self, tmp: Path, key: str) -> int:
        dst = self._path(key)
        dst.parent.mkdir(parents=True, exist_ok=True)
        size = tmp.stat().st_size
        os.replace(tmp, dst)
        return size

    def _temp_path(self) -> Path:
        fd, name = tempfile.mkstemp(dir=self._tmp)
        os.close(fd)
        return Path(name)

    @contextlib.contextmanager
    def _room(self) -> Iterator[None]:
        try:
            with diskspace.room(f"local storage {self.root}"):
                yield
        except StorageFullError:
            metrics.STORAGE_ERRORS.labels("local", "full").inc()
            raise

    def put_file(self, key: str, src: Path, *, move: bool = False) -> int:
        with self._room():
            return self._put_file(key, src, move=move)

    def _put_file(self, key: str, src: Path, *, move: bool) -> int:
        if move:
            # A rename is atomic on its own: no temp file needed (one file creation and one
            # rename less for every source and output of a job).
            dst = self._path(key)
            dst.parent.mkdir(parents=True, exist_ok=True)
            size = src.stat().st_size
            try:
                os.replace(src, dst)
                return size
            except OSError:  # another filesystem: copy through a temp file instead
                pass
        self._path(key)
        tmp = self._temp_path()
        try:
            shutil.copyfile(src, tmp)
            return self._commit(tmp, key)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise

    def put_bytes(self, key: str, data: bytes) -> int:
        self._path(key)
        with self._room():
            tmp = self._temp_path()
            try:
                tmp.write_bytes(data)
                return self._commit(tmp, key)
            except BaseException:
                tmp.unlink(missing_ok=True)
                raise

    def get_file(self, key: str, dst: Path) -> None:
        src = self._path(key)
        try:
            os.link(src, dst)  # objects are never modified in place, so a hard link is safe
        except OSError:
            shutil.copyfile(src, dst)

    def open(self, key: str) -> BinaryIO:
        return self._path(key).open("rb")

    def open_range(self, key: str, start: int, length: int) -> BinaryIO:
        fh = self._path(key).open("rb")
        fh.seek(start)
        return fh

    def local_path(self, key: str) -> Path | None:
        path = self._path(key)
        return path if path.is_file() else None

    def size(self, key: str) -> int:
        return self._path(key).stat().st_size

    def exists(self, key: str) -> bool:
        try:
            return self._path(key).is_file()
        except FileNotFoundError:
            return False

    def delete(self, key: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self._path(key).unlink()

    def delete_prefix(self, prefix: str) -> int:
        base = self._path(prefix.rstrip("/"))
        if not base.is_dir():
            return 0
        count = sum(1 for p in base.rglob("*") if p.is_file())
        shutil.rmtree(base, ignore_errors=True)
        return count

    def list_prefix(self, prefix: str) -> Iterator[str]:
        base = self._path(prefix.rstrip("/"))
        if not base.is_dir():
            return
        for path in sorted(base.rglob("*")):
            if path.is_file():
                yield path.relative_to(self.root).as_posix()

    def check(self) -> None:
        if not os.access(self.root, os.W_OK):
            metrics.STORAGE_ERRORS.labels("local", "unavailable").inc()
            raise StorageUnavailableError(f"Storage directory {self.root} is not writable.")

    def presigned_url(
        self, key: str, filename: str, mime_type: str, expires_seconds: int
    ) -> str | None:
        """None: local files are served by the API itself."""
        self._path(key)
        return None

    def presigned_put_url(self, key: str, expires_seconds: int) -> str | None:
        """None: uploads to local disk go through the API's own signed upload route."""
        self._path(key)
        return None
