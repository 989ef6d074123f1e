"""The StreamStore Protocol: video stream records on either state engine
(`convertly.state.sqlite.streams`, `convertly.state.redis.streams`).

The shared contract of `convertly.state.base` holds: every method is blocking and atomic on
its own; records are scoped to a tenant (`tenant` None: any tenant, for the workers and the
playback route); an unreachable engine raises StateUnavailableError. The store holds records
only: the stream's objects in storage are the caller's to delete (`layout.stream_prefix`).
"""

from __future__ import annotations

import builtins
from typing import Any, Protocol

from convertly.streams.model import Rendition, StreamStatus, VideoStream


class StreamStore(Protocol):
    def add(self, stream: VideoStream) -> None:
        """Store a new stream."""
        ...

    def get(self, stream_id: str, tenant: str | None = None) -> VideoStream | None:
        """The stream, with each rendition's latest `done` and `progress`; None when it does
        not exist or belongs to another tenant."""
        ...

    def by_playback_id(self, playback_id: str) -> VideoStream | None:
        """The stream played under `playback_id`, whoever's it is (the playback route)."""
        ...

    def list(self, tenant: str, *, status: StreamStatus | None, limit: int,
             offset: int) -> tuple[builtins.list[VideoStream], int]:
        """A page of the tenant's streams, newest first, and how many match in all."""
        ...

    def update(self, stream_id: str, tenant: str | None = None,
               **changes: Any) -> VideoStream | None:
        """Replace the given fields of the stored record (names of VideoStream's fields,
        values of their types) and return the new record; None when it does not exist.
        `renditions` replaces the ladder, and with it every rendition's done/progress."""
        ...

    def set_progress(self, stream_id: str, index: int, fraction: float) -> None:
        """Note how far rendition `index` is encoded (0..1); nothing when it is done."""
        ...

    def record_rendition(self, stream_id: str, rendition: Rendition) -> bool:
        """Store the encoded rendition (in place of the one with its index, `done` set) and
        return True when this call completed the ladder: of any number of concurrent or
        repeated calls, exactly one gets True (it queues the packaging step). A rendition
        already done, or a stream no longer there, returns False and stores nothing."""
        ...

    def unfinished(self) -> builtins.list[VideoStream]:
        """Every stream queued or processing, of every tenant (resumed at start-up and
        watched for lost work)."""
        ...

    def remove(self, stream_id: str, tenant: str) -> bool:
        """Delete the record; False when there was none."""
        ...
