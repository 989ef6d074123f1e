"""Serving a stream to players: `/video/v1/{playbackId}/{path}` reads `play/{path}` of the
stream played under that id, once it is ready, after its access rules (access.py) let the
request in. Manifests of a signed stream are rewritten on the way out so that every URI
they name carries the request's own `expires` and `token`.

Byte ranges (`Range: bytes=a-b`, `a-`, `-n`; one range) are read from storage as ranges,
on local disk and on S3 alike.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from convertly.errors import NotFoundError, RangeNotSatisfiableError
from convertly.storage.base import Storage, check_key
from convertly.streams import access, layout, manifests
from convertly.streams.model import Access, StreamStatus, VideoStream
from convertly.streams.store import StreamStore

MAX_MANIFEST_BYTES = 8 * 1024 * 1024
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")
_NAME = r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}"
_PLAY_PATH = re.compile(rf"^{_NAME}(?:/{_NAME})?$")


@dataclass(frozen=True)
class Request:
    """What a playback request says: the playback id and path, its `expires` and `token`
    query parameters, and the page that asks (Origin, Referer)."""

    playback_id: str
    path: str
    expires: str | None = None
    token: str | None = None
    origin: str | None = None
    referer: str | None = None


@dataclass(frozen=True)
class Target:
    """A playback file the request may read: its stream, storage key and content type."""

    stream: VideoStream
    key: str
    mime_type: str

    @property
    def manifest(self) -> bool:
        return self.key.rsplit(".", 1)[-1] in access.MANIFEST_EXTENSIONS

    @property
    def immutable(self) -> bool:
        """Segments never change once packaged; manifests, captions and the poster do."""
        return self.key.endswith(".m4s")


def resolve(streams: StreamStore, secrets: Sequence[bytes], request: Request,
            own_hosts: Sequence[str]) -> Target:
    """The file `request` asks for, after its stream's access rules (tokens signed with the
    first of `secrets` or an older one still accepted); NotFoundError for an unknown or
    unready stream or path, ForbiddenError when the rules refuse it."""
    mime_type = access.mime_type(request.path)
    if mime_type is None or not _PLAY_PATH.match(request.path):
        raise NotFoundError("This stream has no such file.")
    stream = streams.by_playback_id(request.playback_id)
    if stream is None or stream.status != StreamStatus.READY:
        raise NotFoundError("No stream plays under this id (it may not be ready yet, or "
                            "have been deleted).")
    access.check_domain(stream.allowed_domains, request.origin, request.referer, own_hosts)
    if stream.access == Access.SIGNED:
        access.check_token(stream.playback_id, request.expires, request.token, secrets[0],
                           secrets[1:])
    key = check_key(layout.play_key(stream.tenant, stream.id, request.path))
    return Target(stream, key, mime_type)


def manifest_text(storage: Storage, target: Target, request: Request) -> str:
    """A manifest's text as players get it: a signed stream's names every URI with the
    request's own query (which expires when the manifest's URL does)."""
    try:
        if storage.size(target.key) > MAX_MANIFEST_BYTES:
            raise NotFoundError("This manifest is too large to serve.")
        with storage.open(target.key) as fh:
            text = fh.read(MAX_MANIFEST_BYTES).decode("utf-8")
    except FileNotFoundError:
        raise NotFoundError("This stream has no such file.") from None
    if target.stream.access != Access.SIGNED or not request.expires or not request.token:
        return text
    query = f"expires={request.expires}&token={request.token}"
    if target.key.endswith(".mpd"):
        return manifests.dash_with_query(text, query)
    return manifests.hls_with_query(text, query)


def byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The (start, end inclusive) a Range header asks for in a file of `size` bytes; None
    for the whole file (no header, several ranges, or one we do not understand: a server
    may always answer with the whole file); RangeNotSatisfiableError when it starts past
    the end."""
    if not header:
        return None
    match = _RANGE.match(header.strip().replace(" ", ""))
    if match is None or not (match.group(1) or match.group(2)):
        return None
    first, last = match.groups()
    if not first:  # the last n bytes
        n = int(last)
        if n == 0 or size == 0:
            raise RangeNotSatisfiableError(size)
        return max(0, size - n), size - 1
    start = int(first)
    end = min(int(last), size - 1) if last else size - 1
    if start >= size:
        raise RangeNotSatisfiableError(size)
    if end < start:
        return None
    return start, end
