"""Request bodies and downloads: multipart uploads streamed from disk (never read whole into
memory, so the caller can count the bytes as they leave), and file names for saving."""

from __future__ import annotations

import asyncio
import mimetypes
import os
import secrets
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from convertly_client.errors import ClientError

CHUNK = 256 * 1024

# A file to send: a path on disk, or a name and its bytes.
Upload = str | os.PathLike[str] | tuple[str, bytes]


def _quoted(value: str) -> str:
    """A form parameter value as browsers quote it (HTML's multipart encoding algorithm)."""
    return value.replace("\n", "%0A").replace("\r", "%0D").replace('"', "%22")


@dataclass(frozen=True)
class _File:
    name: str
    path: Path | None
    data: bytes | None

    @classmethod
    def of(cls, upload: Upload) -> _File:
        if isinstance(upload, tuple):
            name, data = upload
            return cls(name, None, bytes(data))
        path = Path(upload)
        return cls(path.name, path, None)

    def size(self) -> int:
        if self.data is not None:
            return len(self.data)
        assert self.path is not None
        return self.path.stat().st_size

    def chunks(self) -> Iterator[bytes]:
        if self.data is not None:
            yield self.data
            return
        assert self.path is not None
        with self.path.open("rb") as fh:
            while chunk := fh.read(CHUNK):
                yield chunk


@dataclass(frozen=True)
class MultipartBody:
    """A multipart/form-data body of text fields and files, read from disk as it is sent
    (again from the start each time it is iterated, so a request can be resent)."""

    fields: Sequence[tuple[str, str]]
    files: Sequence[Upload]
    file_field: str = "files"
    boundary: str = field(default_factory=lambda: f"convertly-{secrets.token_hex(16)}")

    @property
    def content_type(self) -> str:
        return f"multipart/form-data; boundary={self.boundary}"

    def _field_head(self, name: str) -> bytes:
        return (f'--{self.boundary}\r\nContent-Disposition: form-data; '
                f'name="{_quoted(name)}"\r\n\r\n').encode()

    def _file_head(self, name: str) -> bytes:
        kind = mimetypes.guess_type(name)[0] or "application/octet-stream"
        return (f'--{self.boundary}\r\nContent-Disposition: form-data; '
                f'name="{self.file_field}"; filename="{_quoted(name)}"\r\n'
                f"Content-Type: {kind}\r\n\r\n").encode()

    def _tail(self) -> bytes:
        return f"--{self.boundary}--\r\n".encode()

    def length(self) -> int:
        """The exact body size (so the server can refuse an oversized body up front)."""
        total = len(self._tail())
        for name, value in self.fields:
            total += len(self._field_head(name)) + len(value.encode()) + 2
        for upload in self.files:
            one = _File.of(upload)
            total += len(self._file_head(one.name)) + one.size() + 2
        return total

    def headers(self) -> dict[str, str]:
        return {"Content-Type": self.content_type, "Content-Length": str(self.length())}

    def iter_bytes(self, on_sent: Callable[[int], None] | None = None) -> Iterator[bytes]:
        """The body in chunks; `on_sent(n)` after each chunk with the bytes sent so far."""
        sent = 0
        for chunk in self._chunks():
            sent += len(chunk)
            if on_sent is not None:
                on_sent(sent)
            yield chunk

    async def aiter_bytes(self, on_sent: Callable[[int], None] | None = None
                          ) -> AsyncIterator[bytes]:
        """The same for an async client; files are read on a worker thread, so a slow disk
        does not hold up the event loop."""
        chunks = self.iter_bytes(on_sent)
        while (chunk := await asyncio.to_thread(next, chunks, None)) is not None:
            yield chunk

    def _chunks(self) -> Iterator[bytes]:
        for name, value in self.fields:
            yield self._field_head(name) + value.encode() + b"\r\n"
        for upload in self.files:
            one = _File.of(upload)
            yield self._file_head(one.name)
            yield from one.chunks()
            yield b"\r\n"
        yield self._tail()


# --- saving downloads ----------------------------------------------------------------------


def safe_filename(name: str | None, fallback: str = "file") -> str:
    """The last path component of a name the server chose, never hidden or empty."""
    base = PurePosixPath((name or "").replace("\\", "/")).name.strip().lstrip(".")
    return base or fallback


def reserve(directory: Path, name: str) -> tuple[Path, BinaryIO]:
    """Create `name` in `directory` for writing, or `stem-1.ext`, `stem-2.ext`, ... when it
    exists: an existing file is never overwritten (the name is taken with O_EXCL)."""
    stem, dot, ext = name.rpartition(".")
    if not dot or not stem:
        stem, dot, ext = name, "", ""
    candidate = directory / name
    for n in range(1, 10_000):
        try:
            return candidate, candidate.open("xb")
        except FileExistsError:
            candidate = directory / f"{stem}-{n}{dot}{ext}"
    raise ClientError(f"too many files named like {name} in {directory}")
