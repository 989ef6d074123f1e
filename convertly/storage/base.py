"""The storage protocol. Keys are `/`-separated, relative, made of safe characters."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, Protocol

from convertly.errors import InvalidRequestError

_SEGMENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$")


def check_key(key: str) -> str:
    """Return `key` if every segment is safe; raise otherwise (no `..`, no absolute keys)."""
    parts = key.split("/")
    if not key or len(key) > 1024 or not all(_SEGMENT.match(p) for p in parts):
        raise InvalidRequestError(f"Invalid storage key {key!r}.")
    return key


def safe_name(filename: str, fallback: str = "file") -> str:
    """A file name reduced to safe characters, for use as the last segment of a key."""
    name = filename.replace("\\", "/").rsplit("/", 1)[-1]
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._-")[:150]
    return name or fallback


class Storage(Protocol):
    """Where sources and outputs live. All methods are blocking; call them off the event loop.

    Contract: writes are atomic (a reader sees the old object, no object, or the whole new
    one); `put_file` with `move=True` may consume `src` (the caller must not use it again);
    `get_file` writes a new file at `dst`, which the caller owns and deletes. Missing keys
    raise FileNotFoundError. Infrastructure failures raise StorageUnavailableError.
    """

    remote: bool
    """True when objects live across a network (several transfers at once help)."""

    def put_file(self, key: str, src: Path, *, move: bool = False) -> int:
        """Store the file at `src` under `key`; return its size in bytes."""
        ...

    def put_bytes(self, key: str, data: bytes) -> int: ...

    def get_file(self, key: str, dst: Path) -> None:
        """Write the object at `key` to the local path `dst`."""
        ...

    def open(self, key: str) -> BinaryIO:
        """Open the object for reading; the caller closes it."""
        ...

    def open_range(self, key: str, start: int, length: int) -> BinaryIO:
        """Open the object for reading from byte `start`; the stream holds at least the
        `length` bytes from there (or up to the end), and the caller reads no more than
        `length` (a byte-range request); the caller closes it."""
        ...

    def local_path(self, key: str) -> Path | None:
        """The object's path on this machine's disk if it has one (for zero-copy serving)."""
        ...

    def size(self, key: str) -> int: ...

    def exists(self, key: str) -> bool: ...

    def delete(self, key: str) -> None:
        """Remove the object; a missing key is not an error."""
        ...

    def delete_prefix(self, prefix: str) -> int:
        """Remove every object under `prefix/`; return how many."""
        ...

    def list_prefix(self, prefix: str) -> Iterator[str]: ...

    def check(self) -> None:
        """Raise StorageUnavailableError when the storage cannot be used right now."""
        ...

    def presigned_url(
        self, key: str, filename: str, mime_type: str, expires_seconds: int
    ) -> str | None:
        """A direct download URL from the storage service, or None when the API must serve
        the bytes itself. The URL downloads the object as an attachment named `filename`
        with Content-Type `mime_type` and stops working after `expires_seconds`."""
        ...

    def presigned_put_url(self, key: str, expires_seconds: int) -> str | None:
        """A URL the client PUTs an object's bytes to, straight into the storage service,
        valid for `expires_seconds`; None when the API must receive the bytes itself."""
        ...
